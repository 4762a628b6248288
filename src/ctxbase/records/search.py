"""A search's request and its hits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)

from ctxbase.records.data import ContextUnit, Memory, Message
from ctxbase.records.values import Input, JSONObject, Text, Timestamp

# --- search -------------------------------------------------------------------------------

SearchKind = Literal["message", "context", "memory"]
SEARCH_KINDS: tuple[SearchKind, ...] = ("message", "context", "memory")
SearchMode = Literal["hybrid", "vector", "text"]
DistanceName = Literal["cosine", "l2", "ip"]


class SearchFilters(Input):
    """Each filter applies to the kinds that have its field; setting a filter leaves out
    the kinds that lack it (e.g. ``user_id`` searches memories only)."""

    agent_id: Annotated[Text, Field(max_length=200)] | None = None
    user_id: Annotated[Text, Field(max_length=200)] | None = None
    conversation_id: uuid.UUID | None = None
    source_type: Annotated[Text, Field(max_length=64)] | None = None
    memory_type: Annotated[Text, Field(max_length=32)] | None = None
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    metadata: JSONObject | None = None
    during: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        None,
        description="A time expression (`yesterday`, `last Tuesday`, `3 weeks ago`, "
        "`May 2023`, `2023-05-08`): only items created in the day, week, month or year it "
        "names, relative ones counted back from `time_anchor`.",
    )
    time_anchor: Timestamp | None = Field(
        None,
        description="What `during` counts back from (default: the newest item the search "
        "could return, so that a past conversation's `last Tuesday` is its own).",
    )


class SearchRequest(Input):
    query: Annotated[Text, Field(min_length=1, max_length=10_000)]
    kinds: list[SearchKind] = Field(default_factory=lambda: list(SEARCH_KINDS), min_length=1)
    mode: SearchMode = "hybrid"
    k: Annotated[int, Field(ge=1, le=200)] = 10
    threshold: float | None = Field(
        None,
        allow_inf_nan=False,
        description="Least vector similarity; default 0.7 in vector mode, none in hybrid.",
    )
    filters: SearchFilters = Field(default_factory=SearchFilters)
    distance: DistanceName = "cosine"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "what does the user drink in the morning?",
                    "kinds": ["memory", "message"],
                    "mode": "hybrid",
                    "k": 5,
                }
            ]
        }
    )


def search_values(
    query: str,
    *,
    kinds: list[str] | None,
    mode: str,
    k: int,
    threshold: float | None,
    filters: SearchFilters | dict[str, Any] | None,
    distance: str,
) -> dict[str, Any]:
    """The fields of a :class:`SearchRequest` from search() arguments (defaults omitted)."""
    values: dict[str, Any] = {
        "query": query,
        "mode": mode,
        "k": k,
        "threshold": threshold,
        "distance": distance,
    }
    if kinds is not None:
        values["kinds"] = kinds
    if filters is not None:
        values["filters"] = filters
    return values


def _item_kind(item: Any) -> str:
    """Which record an item is, from the field only that record has (``role``,
    ``memory_type``), so a hit's item is validated as one record type, not tried as each."""
    if isinstance(item, Mapping):
        is_message, is_memory = "role" in item, "memory_type" in item
    else:
        is_message, is_memory = isinstance(item, Message), isinstance(item, Memory)
    return "message" if is_message else "memory" if is_memory else "context"


SearchItem = Annotated[
    Annotated[Message, Tag("message")]
    | Annotated[ContextUnit, Tag("context")]
    | Annotated[Memory, Tag("memory")],
    Discriminator(_item_kind),
]


class SearchHit(BaseModel):
    kind: SearchKind
    id: uuid.UUID
    score: float = Field(description="Higher is better; comparable within one search only.")
    retrieval_method: Literal["vector", "text", "hybrid"]
    item: SearchItem
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Why it ranks here. Hybrid: `vector_rank`, `vector_score`, `text_rank`, "
        "`text_score` for each leg that found it, and `fused_score`; `exact_identifier` when "
        "it holds an identifier of the query; memories: the `boost` factor. Vector: "
        "`similarity`; text: `text_score`.",
    )


class SearchResult(BaseModel):
    hits: list[SearchHit]
    mode: SearchMode = Field(description="The mode asked for.")
    fallback: str | None = Field(
        None, description="Why vectors could not be used, when search fell back to full text."
    )
