"""``/projects/{project}/contexts``: versioned context units."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ctxbase.records import ContextUnit
from ctxbase.server.deps import ProjectSlug, StoreDep
from ctxbase.server.routing import declared

router = APIRouter(tags=["contexts"])


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
