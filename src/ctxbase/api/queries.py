"""Query parameters of the list and read operations, as strict models.

They name and type every parameter a list accepts, so the HTTP clients know what goes in
the query string and an unknown parameter is refused by name on every interface.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from ctxbase.records import INT32_MAX, Input, JSONObject, SequenceNumber, Text, Timestamp

Limit = Annotated[int, Field(ge=1, le=1000, description="Items per page.")]


def _json_text(value: object) -> object:
    """A JSON object given as text, as a query string carries it."""
    if isinstance(value, str):
        import json

        try:
            return json.loads(value)
        except ValueError:
            raise ValueError('must be a JSON object, e.g. {"k": "v"}') from None
    return value


MetadataFilter = Annotated[
    JSONObject | None,
    BeforeValidator(_json_text),
    Field(description='Keeps items whose metadata has these pairs, e.g. {"k":"v"}.'),
]
#: A conversation's health score; filters on it leave out conversations without one.
HealthScore = Annotated[int, Field(ge=0, le=100)]
Cursor = Annotated[Text | None, Field(description="`next_cursor` of the previous page.")]


class PageQuery(Input):
    limit: Limit = 50
    cursor: Cursor = None


class ConversationQuery(Input):
    agent_id: Annotated[Text, Field(max_length=200)] | None = None
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    metadata: MetadataFilter = None
    min_health: HealthScore | None = Field(None, description="Only health_score >= this.")
    max_health: HealthScore | None = Field(None, description="Only health_score <= this.")
    limit: Limit = 50
    cursor: Cursor = None


class MessageQuery(Input):
    after: SequenceNumber | None = Field(None, description="Only positions after this.")
    limit: Limit = 50
    cursor: Cursor = None


class ContextQuery(Input):
    source_type: Annotated[Text, Field(max_length=64)] | None = None
    name: Annotated[Text, Field(max_length=1000)] | None = None
    include_superseded: bool = False
    version: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None
    limit: Limit = 50
    cursor: Cursor = None


class MemoryQuery(Input):
    agent_id: Annotated[Text, Field(max_length=200)] | None = None
    user_id: Annotated[Text, Field(max_length=200)] | None = None
    memory_type: Annotated[Text, Field(max_length=32)] | None = None
    conversation_id: uuid.UUID | None = None
    owner_conversation_id: uuid.UUID | None = Field(
        None, description="Only memories this conversation owns."
    )
    limit: Limit = 50
    cursor: Cursor = None


class StateQuery(Input):
    namespace: Text = ""
    owner_conversation_id: uuid.UUID | None = Field(
        None, description="Only entries this conversation owns."
    )
    limit: Limit = 50
    cursor: Cursor = None


class EventQuery(Input):
    after: SequenceNumber = 0
    limit: Limit = 50


class SubscriptionQuery(Input):
    agent_id: Annotated[Text, Field(max_length=200)] | None = None
    limit: Limit = 50
    cursor: Cursor = None


class PendingQuery(Input):
    limit: Limit = 50
    after: SequenceNumber | None = Field(
        None, description="Scan from this sequence instead of the subscription's cursor."
    )


class KeyQuery(Input):
    tenant: Annotated[Text, Field(max_length=64)] | None = None
    limit: Limit = 50
    cursor: Cursor = None


class AuditQuery(Input):
    action: Annotated[Text, Field(max_length=100)] | None = None
    limit: Limit = 50
    cursor: Cursor = None


class JobQuery(Input):
    kind: Literal["migration", "reembed"] | None = None
    status: (
        Literal["pending", "running", "completed", "completed_with_errors", "failed", "cancelled"]
        | None
    ) = None
    limit: Limit = 50
    cursor: Cursor = None
