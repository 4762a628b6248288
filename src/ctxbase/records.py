"""Public records and the inputs that create or change them.

The same models serve the library, the REST API (request and response bodies, hence
OpenAPI) and the HTTP client, so the three cannot drift apart.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

MessageRole = Literal["user", "assistant", "system", "tool"]
INT32_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: A UTF-16 surrogate code point standing alone: JSON's "\ud800" escape parses to one,
#: but it is not a character, so no UTF-8 text (a PostgreSQL column, a response body,
#: an export) can hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` if both backends can store it: no NUL and no lone surrogate."""
    # PostgreSQL text cannot hold NUL; refusing it everywhere keeps the backends alike.
    if "\x00" in text:
        raise ValueError("text must not contain NUL (\\x00) characters")
    if not text.isascii() and _SURROGATE.search(text) is not None:
        raise ValueError("text must be valid Unicode (no lone surrogates such as \\ud800)")
    return text


def portable_json(value: Any) -> Any:
    """JSON both backends store identically: no NaN/Infinity, no NUL or lone surrogate in
    strings and keys, string keys, integers within 64 bits (the range SQL parameters and
    SQLite's JSON functions take)."""
    _walk_json(value)
    return value


def _walk_json(value: Any) -> None:
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("JSON integers must fit in 64 bits")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("JSON numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("JSON object keys must be strings")
            storable_text(key)
            _walk_json(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _walk_json(item)
    elif value is not None and not isinstance(value, bool | int | float):
        raise ValueError(f"{type(value).__name__} is not a JSON value")


def _utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


Text = Annotated[str, AfterValidator(storable_text)]
JSONValue = Annotated[Any, AfterValidator(portable_json)]
JSONObject = Annotated[dict[str, Any], AfterValidator(portable_json)]
Timestamp = Annotated[datetime, AfterValidator(_utc)]
Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Tokens = Annotated[int, Field(ge=0, le=INT32_MAX)]


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON, the measure of the metadata limit."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


class Record(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Input(BaseModel):
    """Base of every model a caller sends: an unknown field is an error that names it."""

    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back to get the next, None at the end."""

    items: list[T]
    next_cursor: str | None = None


# --- projects -----------------------------------------------------------------------------


class Project(Record):
    id: uuid.UUID
    slug: str
    name: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ProjectIn(Input):
    slug: Slug
    name: Annotated[Text, Field(max_length=200)] | None = None
    settings: JSONObject = Field(default_factory=dict)


class ProjectPatch(Input):
    name: Annotated[Text, Field(max_length=200)] | None = None
    settings: JSONObject | None = None


# --- tenants, keys, audit -----------------------------------------------------------------

Role = Literal["admin", "writer", "reader"]


class Quotas(Input):
    """Limits of a tenant's plan; None means unlimited."""

    projects: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    items: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = Field(
        None, description="Messages, context units, memories and events stored, together."
    )
    requests_per_minute: Annotated[int, Field(ge=1, le=INT64_MAX)] | None = None
    storage_bytes: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = Field(
        None, description="Bytes of stored text and JSON, together."
    )


class Tenant(Record):
    id: uuid.UUID
    slug: str
    name: str
    plan: str
    quotas: Quotas
    is_active: bool
    created_at: datetime
    updated_at: datetime


class TenantIn(Input):
    slug: Slug
    name: Annotated[Text, Field(max_length=200)] | None = None
    plan: Annotated[Text, Field(min_length=1, max_length=32)] = "free"
    quotas: Quotas = Field(default_factory=Quotas)


class TenantPatch(Input):
    name: Annotated[Text, Field(max_length=200)] | None = None
    plan: Annotated[Text, Field(min_length=1, max_length=32)] | None = None
    quotas: Quotas | None = None
    is_active: bool | None = Field(None, description="false deactivates: its keys stop at once.")


class ApiKey(Record):
    """A key as listed: never the key itself, only its prefix to recognise it."""

    key_id: uuid.UUID
    tenant: str
    name: str
    prefix: str
    role: Role
    projects: list[str] | None = Field(description="The only projects it sees; None: all.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIn(Input):
    tenant: Slug | None = Field(None, description="Default: the caller's tenant.")
    role: Role
    name: Annotated[Text, Field(max_length=200)] = ""
    projects: list[Slug] | None = Field(None, max_length=1000)
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


class AuditEntry(Record):
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    created_at: datetime


# --- conversations and messages -----------------------------------------------------------


class Conversation(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    title: str | None
    task: str | None
    agent_id: str | None
    provider: str | None
    model: str | None
    provider_config: dict[str, Any]
    metadata: dict[str, Any]
    health_score: int | None
    message_count: int = Field(description="Messages appended so far.")
    input_tokens: int = Field(description="Sum of the messages' input tokens.")
    output_tokens: int = Field(description="Sum of the messages' output tokens.")
    created_at: Timestamp
    updated_at: Timestamp


class ConversationIn(Input):
    title: Annotated[Text, Field(max_length=500)] | None = None
    task: Text | None = None
    agent_id: Annotated[Text, Field(max_length=200)] | None = None
    provider: Annotated[Text, Field(max_length=100)] | None = None
    model: Annotated[Text, Field(max_length=200)] | None = None
    provider_config: JSONObject = Field(default_factory=dict)
    metadata: JSONObject = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Refactor the billing module",
                    "agent_id": "coder-1",
                    "provider": "openai",
                    "model": "gpt-4o",
                    "metadata": {"ticket": "BILL-42"},
                }
            ]
        }
    )


class ConversationPatch(Input):
    title: Annotated[Text, Field(max_length=500)] | None = None
    task: Text | None = None
    agent_id: Annotated[Text, Field(max_length=200)] | None = None
    provider: Annotated[Text, Field(max_length=100)] | None = None
    model: Annotated[Text, Field(max_length=200)] | None = None
    provider_config: JSONObject | None = None
    metadata: JSONObject | None = None
    health_score: Annotated[int, Field(ge=0, le=100)] | None = None


class Message(Record):
    id: uuid.UUID
    conversation_id: uuid.UUID
    project_id: uuid.UUID
    position: int = Field(description="1, 2, 3, … without gaps within the conversation.")
    role: MessageRole
    content: str
    thinking: str | None
    input_tokens: int
    output_tokens: int
    finish_reason: str | None
    metadata: dict[str, Any]
    created_at: Timestamp


class MessageIn(Input):
    role: MessageRole
    content: Text
    thinking: Text | None = None
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    finish_reason: Annotated[Text, Field(max_length=64)] | None = None
    metadata: JSONObject = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"role": "user", "content": "Why does the invoice total drift?", "input_tokens": 12}
            ]
        }
    )


# --- context units ------------------------------------------------------------------------


class ContextUnit(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    source_type: str
    name: str
    content: str
    content_hash: str = Field(description="SHA-256 of the content.")
    metadata: dict[str, Any]
    version: int
    superseded_by: uuid.UUID | None = Field(description="The next version, if any.")
    created_at: datetime
    updated_at: datetime


class ContextIn(Input):
    name: Annotated[Text, Field(min_length=1, max_length=1000)]
    content: Text
    source_type: Annotated[Text, Field(min_length=1, max_length=64)] = "note"
    metadata: JSONObject = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "src/billing/invoice.py",
                    "source_type": "file",
                    "content": "def total(lines): ...",
                    "metadata": {"lang": "python"},
                }
            ]
        }
    )


class ContextUpdate(Input):
    content: Text
    metadata: JSONObject | None = None


# --- memories -----------------------------------------------------------------------------


class Memory(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    agent_id: str | None
    user_id: str | None
    conversation_id: uuid.UUID | None
    first_message_id: uuid.UUID | None
    content: str
    memory_type: str
    importance: float
    metadata: dict[str, Any]
    access_count: int
    last_accessed_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MemoryIn(Input):
    content: Annotated[Text, Field(min_length=1)]
    agent_id: Annotated[Text, Field(max_length=200)] | None = None
    user_id: Annotated[Text, Field(max_length=200)] | None = None
    conversation_id: uuid.UUID | None = None
    first_message_id: uuid.UUID | None = None
    memory_type: Annotated[Text, Field(min_length=1, max_length=32)] = "semantic"
    importance: Annotated[float, Field(ge=0, le=1)] = 0.5
    metadata: JSONObject = Field(default_factory=dict)
    expires_at: Timestamp | None = None
    ttl_seconds: Annotated[int, Field(gt=0, le=10 * 365 * 86400)] | None = Field(
        None, description="Alternative to expires_at: expire this many seconds from now."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "content": "The user drinks espresso every morning",
                    "user_id": "u-7",
                    "memory_type": "fact",
                    "importance": 0.8,
                }
            ]
        }
    )


class MemoryPatch(Input):
    content: Annotated[Text, Field(min_length=1)] | None = None
    memory_type: Annotated[Text, Field(min_length=1, max_length=32)] | None = None
    importance: Annotated[float, Field(ge=0, le=1)] | None = None
    metadata: JSONObject | None = None
    expires_at: Timestamp | None = None


class MemoryChange(Record):
    id: uuid.UUID
    memory_id: uuid.UUID
    action: Literal["add", "update"]
    old_value: dict[str, Any] | None
    new_value: dict[str, Any] | None
    actor: str | None
    created_at: datetime


# --- agent state --------------------------------------------------------------------------


class StateEntry(Record):
    namespace: str
    key: str
    value: Any
    version: int = Field(description="Starts at 1, +1 on every write; compare-and-set on it.")
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class StateIn(Input):
    value: JSONValue
    ttl_seconds: Annotated[int, Field(gt=0, le=10 * 365 * 86400)] | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"value": {"step": 3, "plan": ["a", "b"]}}]}
    )


# --- events and subscriptions -------------------------------------------------------------

EventType = Annotated[Text, Field(min_length=1, max_length=200)]
DeliveryMethod = Literal["webhook", "redis", "sse", "poll"]
SequenceNumber = Annotated[int, Field(ge=0, le=2**62)]


class Event(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    sequence: int = Field(
        description="1, 2, 3, … without gaps within the project, in commit order."
    )
    event_type: str
    data: Any
    metadata: dict[str, Any]
    created_at: datetime


class EventIn(Input):
    event_type: EventType
    data: JSONValue = Field(default_factory=dict)
    metadata: JSONObject = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_type": "schema.changed",
                    "data": {"summary": "GET /users now returns email"},
                }
            ]
        }
    )


class EventAppend(EventIn):
    """One event; with ``expected_sequence``, only if the stream is still at that sequence."""

    expected_sequence: SequenceNumber | None = Field(
        None, description="Append only if the stream's last sequence is this (409 otherwise)."
    )


class EventBatch(Input):
    """Several events, appended all or none at consecutive sequences."""

    events: list[EventIn] = Field(min_length=1)
    expected_sequence: SequenceNumber | None = Field(
        None, description="Append only if the stream's last sequence is this (409 otherwise)."
    )


class EventPage(BaseModel):
    items: list[Event]
    last_sequence: int = Field(description="The stream's last sequence when read.")
    next_after: int | None = Field(
        None, description="Pass as `after` for the next page; None when nothing more was there."
    )


class Subscription(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    agent_id: str
    needs: list[str]
    event_types: list[str]
    threshold: float | None
    delivery: DeliveryMethod
    target: str | None
    has_secret: bool = Field(description="Whether webhooks are signed; the secret is never shown.")
    cursor: int = Field(description="The last sequence delivered (or acknowledged).")
    is_active: bool
    attempts: int = Field(description="Failed attempts at delivering the event after `cursor`.")
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class SubscriptionIn(Input):
    agent_id: Annotated[Text, Field(min_length=1, max_length=200)]
    needs: list[Annotated[Text, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=list,
        max_length=50,
        description="What the agent needs to know, in words; matched by meaning.",
    )
    event_types: list[EventType] = Field(
        default_factory=list,
        max_length=100,
        description="Event types to receive; `prefix.*` matches a family.",
    )
    threshold: Annotated[float, Field(ge=-1, le=1)] | None = Field(
        None, description="Least similarity of a need and an event (default: the setting)."
    )
    delivery: DeliveryMethod = "poll"
    target: Annotated[Text, Field(min_length=1, max_length=2000)] | None = Field(
        None, description="webhook: the URL; redis: the channel."
    )
    secret: Annotated[Text, Field(min_length=16, max_length=500)] | None = Field(
        None, description="webhook: the HMAC key signing each delivery (stored encrypted)."
    )
    start_after: SequenceNumber | None = Field(
        None, description="Deliver events after this sequence (default: only new events)."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agent_id": "frontend-agent",
                    "needs": ["changes to the API schema"],
                    "event_types": ["deploy.*"],
                    "delivery": "webhook",
                    "target": "https://agents.example.com/hooks/frontend",
                    "secret": "a-long-random-shared-secret",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _target_fits_delivery(self) -> SubscriptionIn:
        if self.delivery == "webhook":
            if not self.target or not self.target.startswith(("http://", "https://")):
                raise ValueError("webhook delivery needs an http(s) URL as target")
            if not self.secret:
                raise ValueError("webhook delivery needs a secret to sign deliveries")
        elif self.delivery == "redis":
            if not self.target:
                raise ValueError("redis delivery needs a channel as target")
        elif self.target is not None or self.secret is not None:
            raise ValueError(f"{self.delivery} delivery takes no target or secret")
        return self


class Ack(Input):
    sequence: SequenceNumber = Field(description="Everything up to this sequence is handled.")


class PendingEvents(BaseModel):
    """Events a poll subscription has not acknowledged yet, in sequence order."""

    items: list[Event] = Field(description="The matching events, oldest first.")
    cursor: int = Field(description="The subscription's cursor: the last sequence acknowledged.")
    scanned_to: int = Field(
        description="The last sequence examined: acknowledge it once the items are handled "
        "(events between that did not match are then skipped too)."
    )
    last_sequence: int = Field(description="The stream's last sequence when read.")


class DeadLetter(Record):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    sequence: int
    attempts: int
    last_error: str
    created_at: datetime


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
    details: dict[str, Any] = Field(default_factory=dict)


class SearchResult(BaseModel):
    hits: list[SearchHit]
    mode: SearchMode = Field(description="The mode asked for.")
    fallback: str | None = Field(
        None, description="Why vectors could not be used, when search fell back to full text."
    )
