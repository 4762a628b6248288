"""``POST /projects/{project}/search``."""

from __future__ import annotations

from fastapi import APIRouter

from ctxbase.records import SearchRequest, SearchResult
from ctxbase.server.deps import ProjectSlug, StoreDep
from ctxbase.server.routing import declared

router = APIRouter(tags=["search"])


@declared(router, "search")
def search(project: ProjectSlug, body: SearchRequest, store: StoreDep) -> SearchResult:
    """Each hit carries its `score`, its `retrieval_method` and the item. Without usable
    vectors the search falls back to full text and says why in `fallback`."""
    return store.search(
        body.query,
        kinds=list(body.kinds),
        mode=body.mode,
        k=body.k,
        threshold=body.threshold,
        filters=body.filters,
        distance=body.distance,
        project=project,
    )
