"""The search playground: every option of the search operation, and why each hit ranks
where it does (its score, how it was found, and in hybrid mode each leg's rank and score
before fusion)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query
from starlette.responses import Response

from ctxbase.errors import InvalidInputError
from ctxbase.records import SEARCH_KINDS, SearchFilters
from ctxbase.records.search import DistanceName, SearchMode
from ctxbase.server.console.pages.common import VisitorDep, number, opened, outcome, page, utc

router = APIRouter(prefix="/p/{project}")
MODES = get_args(SearchMode)
DISTANCES = get_args(DistanceName)
#: Filter fields the form offers as text inputs (metadata is a JSON object).
TEXT_FILTERS = ("agent_id", "user_id", "conversation_id", "source_type", "memory_type", "during")


@router.get("/search")
async def search(
    v: VisitorDep,
    project: str,
    q: str = "",
    kinds: Annotated[list[str] | None, Query()] = None,
    mode: str = "hybrid",
    k: int = 10,
    threshold: str = "",
    distance: str = "cosine",
    agent_id: str = "",
    user_id: str = "",
    conversation_id: str = "",
    source_type: str = "",
    memory_type: str = "",
    created_after: str = "",
    created_before: str = "",
    metadata: str = "",
    during: str = "",
) -> Response:
    opened(v, project)
    chosen = [kind for kind in (kinds or SEARCH_KINDS) if kind in SEARCH_KINDS]
    filters = {
        "agent_id": agent_id,
        "user_id": user_id,
        "conversation_id": conversation_id,
        "source_type": source_type,
        "memory_type": memory_type,
        "created_after": created_after,
        "created_before": created_before,
        "metadata": metadata,
        "during": during,
    }
    form = {"q": q, "kinds": chosen, "mode": mode, "k": k, "threshold": threshold}
    form.update(distance=distance, **filters)
    result, error, took = None, None, None
    if q.strip():
        started = time.perf_counter()
        result, error = await outcome(
            lambda: v.api.search(
                q,
                kinds=chosen or list(SEARCH_KINDS),
                mode=mode,
                k=k,
                threshold=number("threshold", threshold),
                filters=_filters(filters),
                distance=distance,
                project=project,
            )
        )
        took = (time.perf_counter() - started) * 1000
    return await page(
        v,
        "search.html",
        title=f"Search · {project}",
        project=project,
        section="search",
        form=form,
        kinds=SEARCH_KINDS,
        modes=MODES,
        distances=DISTANCES,
        text_filters=TEXT_FILTERS,
        result=result,
        error=error,
        took=took,
    )


def _filters(values: dict[str, str]) -> SearchFilters:
    given: dict[str, Any] = {k: v.strip() for k, v in values.items() if v.strip()}
    if "metadata" in given:
        try:
            given["metadata"] = json.loads(given["metadata"])
        except ValueError:
            raise InvalidInputError('metadata must be a JSON object, e.g. {"k": "v"}') from None
    for name in ("created_after", "created_before"):
        if name in given:
            given[name] = utc(given[name])
    try:
        return SearchFilters.model_validate(given)
    except ValueError as error:
        raise InvalidInputError(f"Invalid filter: {error}") from None
