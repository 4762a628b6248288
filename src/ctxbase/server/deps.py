"""Dependencies shared by the routes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request

from ctxbase.errors import InvalidInputError
from ctxbase.store import Store
from ctxbase.store.base import DEFAULT_PAGE, MAX_PAGE


def get_store(request: Request) -> Store:
    """The store the request may see (narrowed to the caller's scope once auth applies)."""
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]
ProjectSlug = Annotated[
    str, Path(description="The project's slug, unique in the tenant.", examples=["default"])
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
Actor = Annotated[
    str | None,
    Header(alias="X-Ctxbase-Agent", max_length=200, description="Who makes the change."),
]
DEFAULT_LIMIT = DEFAULT_PAGE


def metadata_filter(
    metadata: Annotated[
        str | None,
        Query(
            description='JSON object; keeps items whose metadata has these pairs, e.g. {"k":"v"}'
        ),
    ] = None,
) -> dict[str, Any] | None:
    if metadata is None:
        return None
    try:
        value = json.loads(metadata)
    except ValueError:
        raise InvalidInputError("metadata must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidInputError("metadata must be a JSON object")
    return value


MetadataFilter = Annotated[dict[str, Any] | None, Depends(metadata_filter)]
