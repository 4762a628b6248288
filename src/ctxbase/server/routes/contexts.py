"""``/projects/{project}/contexts``: versioned context units."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from ctxbase.records import ContextIn, ContextUnit, ContextUpdate, Page
from ctxbase.server.deps import DEFAULT_LIMIT, Cursor, Limit, ProjectSlug, StoreDep
from ctxbase.server.routing import declared

router = APIRouter(tags=["contexts"])


@declared(router, "contexts.add")
def add_context(project: ProjectSlug, body: ContextIn, store: StoreDep) -> ContextUnit:
    return store.contexts.add(
        body.name,
        body.content,
        source_type=body.source_type,
        metadata=body.metadata,
        project=project,
    )


@declared(router, "contexts.list")
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


@declared(router, "contexts.get_latest", "contexts.get_version")
def get_context_by_name(
    project: ProjectSlug,
    name: str,
    store: StoreDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> ContextUnit:
    if version is None:
        return store.contexts.get_latest(name, project=project)
    return store.contexts.get_version(name, version, project=project)


@declared(router, "contexts.get")
def get_context(project: ProjectSlug, context_id: uuid.UUID, store: StoreDep) -> ContextUnit:
    return store.contexts.get(context_id, project=project)


@declared(router, "contexts.update")
def update_context(
    project: ProjectSlug, context_id: uuid.UUID, body: ContextUpdate, store: StoreDep
) -> ContextUnit:
    return store.contexts.update(
        context_id, content=body.content, metadata=body.metadata, project=project
    )


@declared(router, "contexts.delete")
def delete_context(project: ProjectSlug, context_id: uuid.UUID, store: StoreDep) -> Response:
    store.contexts.delete(context_id, project=project)
    return Response(status_code=204)


@declared(router, "contexts.versions")
def list_versions(
    project: ProjectSlug, context_id: uuid.UUID, store: StoreDep
) -> Page[ContextUnit]:
    return Page[ContextUnit](items=store.contexts.versions(context_id, project=project))
