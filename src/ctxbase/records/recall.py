"""A recall's request and its answer: prompt-ready context within a token budget, and a
project's counts per kind."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ctxbase.records.search import SEARCH_KINDS, SearchFilters, SearchKind, SearchMode
from ctxbase.records.values import Input, Text, Timestamp

#: Most tokens one recall may fill: far above any model's context window today.
MAX_RECALL_TOKENS = 1_000_000


class RecallRequest(Input):
    query: Annotated[Text, Field(min_length=1, max_length=10_000)]
    max_tokens: Annotated[int, Field(ge=1, le=MAX_RECALL_TOKENS)] = Field(
        2000, description="Budget of the answer's `text`, in estimated tokens."
    )
    kinds: list[SearchKind] = Field(
        default_factory=lambda: list(SEARCH_KINDS),
        min_length=1,
        description="What the search looks through.",
    )
    mode: SearchMode = "hybrid"
    k: Annotated[int, Field(ge=1, le=200)] = Field(
        20, description="Search hits considered before the budget is applied."
    )
    threshold: float | None = Field(
        None, allow_inf_nan=False, description="Least vector similarity (as in search)."
    )
    filters: SearchFilters = Field(default_factory=SearchFilters)
    conversation_id: uuid.UUID | None = Field(
        None, description="Also bring this conversation's latest messages."
    )
    recent_messages: Annotated[int, Field(ge=0, le=1000)] = Field(
        10, description="How many of the conversation's latest messages (0: none)."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "how does the user take their coffee?",
                    "max_tokens": 500,
                    "kinds": ["memory", "context"],
                }
            ]
        }
    )


class RecallItem(BaseModel):
    """One piece of the recalled context, as it appears in the answer's ``text``."""

    kind: SearchKind
    id: uuid.UUID = Field(description="The source record's id.")
    source: str = Field(
        description="How the text names the source: `memory:<id>`, `context:<id>`, `message:<id>`."
    )
    reason: Literal["search", "recent"] = Field(
        description="Found by the search, or one of the conversation's latest messages."
    )
    score: float | None = Field(description="The search score; None for a recent message.")
    text: str = Field(description="The text given, cut to the budget when `truncated`.")
    tokens: int = Field(description="Estimated tokens of this item's part of `text`.")
    truncated: bool = False
    created_at: Timestamp
    title: str | None = Field(
        None,
        description="The context unit's name, or the message's role and position.",
    )


class RecallResult(BaseModel):
    """What to put in a prompt for a query: the best items that fit the budget."""

    items: list[RecallItem] = Field(description="In the order of `text`.")
    text: str = Field(description="The items as prompt-ready text, each with its source.")
    tokens: int = Field(description="Estimated tokens of `text`, never above `max_tokens`.")
    max_tokens: int
    omitted: int = Field(description="Items found that did not fit the budget.")
    fallback: str | None = Field(
        None, description="Why the search could not use vectors, when it fell back."
    )
    token_estimate: Literal["chars"] = Field(
        "chars",
        description="How tokens are counted: ASCII characters / 4 plus other characters "
        "one each, rounded up per piece (an over-estimate for English, safe for a budget).",
    )


class ProjectStats(BaseModel):
    """What a project holds, per kind."""

    project: str
    conversations: int
    messages: int
    context_units: int = Field(description="Latest versions only.")
    memories: int = Field(description="Unexpired memories.")
    state_entries: int = Field(description="Unexpired entries.")
    events: int = Field(description="The event stream's last sequence.")
    input_tokens: int = Field(description="Sum of the messages' input tokens.")
    output_tokens: int = Field(description="Sum of the messages' output tokens.")
