"""``/projects/{project}/contexts``: versioned context units."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from ctxbase.records import ContextIn, ContextUnit, ContextUpdate, Page
from ctxbase.server.deps import DEFAULT_LIMIT, Cursor, Limit, ProjectSlug, StoreDep

router = APIRouter(prefix="/projects/{project}/contexts", tags=["contexts"])


@router.post(
    "",
    status_code=201,
    response_model=ContextUnit,
    summary="Add a context unit (same content under the same name returns the stored one)",
)
def add_context(project: ProjectSlug, body: ContextIn, store: StoreDep) -> ContextUnit:
    return store.contexts.add(
        body.name,
        body.content,
        source_type=body.source_type,
        metadata=body.metadata,
        project=project,
    )


@router.get("", response_model=Page[ContextUnit], summary="List latest versions, newest first")
def list_contexts(
    project: ProjectSlug,
    store: StoreDep,
    source_type: str | None = None,
    name: str | None = None,
    include_superseded: bool = False,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ContextUnit]:
    return store.contexts.list(
        project=project,
        source_type=source_type,
        name=name,
        include_superseded=include_superseded,
        version=version,
        limit=limit,
        cursor=cursor,
    )


@router.get("/{context_id}", response_model=ContextUnit, summary="Get any version by id")
def get_context(project: ProjectSlug, context_id: uuid.UUID, store: StoreDep) -> ContextUnit:
    return store.contexts.get(context_id, project=project)


@router.put(
    "/{context_id}",
    response_model=ContextUnit,
    summary="Store a new version after this one (which must be the latest)",
)
def update_context(
    project: ProjectSlug, context_id: uuid.UUID, body: ContextUpdate, store: StoreDep
) -> ContextUnit:
    return store.contexts.update(
        context_id, content=body.content, metadata=body.metadata, project=project
    )


@router.delete("/{context_id}", status_code=204, summary="Delete every version of the unit")
def delete_context(project: ProjectSlug, context_id: uuid.UUID, store: StoreDep) -> Response:
    store.contexts.delete(context_id, project=project)
    return Response(status_code=204)


@router.get(
    "/{context_id}/versions",
    response_model=Page[ContextUnit],
    summary="Every version of the unit, oldest first",
)
def list_versions(
    project: ProjectSlug, context_id: uuid.UUID, store: StoreDep
) -> Page[ContextUnit]:
    return Page[ContextUnit](items=store.contexts.versions(context_id, project=project))
