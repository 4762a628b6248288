"""Records of conversations, messages, context units, memories and agent state, and
their inputs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    model_validator,
)

from ctxbase.records.values import (
    Input,
    JSONObject,
    JSONValue,
    MessageRole,
    Record,
    Text,
    Timestamp,
    Tokens,
)

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
    updated_at: Timestamp = Field(description="When it was last edited (else created_at).")


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


class MessagePatch(Input):
    """An edit of a message: ``None`` leaves a field as it is. Role, position, tokens and
    finish reason are what happened and are not editable."""

    content: Text | None = None
    thinking: Text | None = None
    metadata: JSONObject | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"content": "Why does the invoice total drift by a cent?"}]}
    )


class MessageChange(Record):
    """One edit of a message: the edited fields' old and new values, when and by whom."""

    id: uuid.UUID
    message_id: uuid.UUID
    action: Literal["update"]
    old_value: dict[str, Any] | None
    new_value: dict[str, Any] | None
    actor: str | None
    created_at: datetime


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


ContextName = Annotated[Text, Field(min_length=1, max_length=1000)]


class ContextIn(Input):
    name: ContextName
    content: Text
    source_type: Annotated[Text, Field(min_length=1, max_length=64)] = "note"
    metadata: JSONObject = Field(default_factory=dict)
    supersedes: uuid.UUID | None = Field(
        None,
        description="A unit of another name this one replaces (a renamed or merged file): "
        "the latest version of its name, which becomes superseded by the new unit.",
    )

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
    name: ContextName | None = Field(
        None, description="Store the new version under this name instead (a rename)."
    )
    metadata: JSONObject | None = None


# --- memories -----------------------------------------------------------------------------


class Memory(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    agent_id: str | None
    user_id: str | None
    conversation_id: uuid.UUID | None
    first_message_id: uuid.UUID | None
    owner_conversation_id: uuid.UUID | None = Field(
        description="The conversation that owns it: deleted with that conversation."
    )
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
    conversation_id: uuid.UUID | None = Field(
        None, description="The conversation it came from; it outlives it (the link clears)."
    )
    first_message_id: uuid.UUID | None = None
    owner_conversation_id: uuid.UUID | None = Field(
        None, description="A conversation that owns it: it is deleted with that conversation."
    )
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
    """The fields to change; one left out (or None) stays as it is."""

    content: Annotated[Text, Field(min_length=1)] | None = None
    memory_type: Annotated[Text, Field(min_length=1, max_length=32)] | None = None
    importance: Annotated[float, Field(ge=0, le=1)] | None = None
    metadata: JSONObject | None = None
    expires_at: Timestamp | None = None
    # None already means "unchanged" for expires_at, so removing an expiry needs its own field.
    clear_expiry: bool = Field(
        False, description="True removes the expiry: the memory never expires."
    )

    @model_validator(mode="after")
    def _one_expiry_change(self) -> MemoryPatch:
        if self.clear_expiry and self.expires_at is not None:
            raise ValueError("give expires_at or clear_expiry, not both")
        return self


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
    owner_conversation_id: uuid.UUID | None = Field(
        description="The conversation that owns it: deleted with that conversation."
    )
    created_at: datetime
    updated_at: datetime


class StateIn(Input):
    value: JSONValue
    ttl_seconds: Annotated[int, Field(gt=0, le=10 * 365 * 86400)] | None = None
    owner_conversation_id: uuid.UUID | None = Field(
        None,
        description="A conversation that owns the entry: it is deleted with that conversation. "
        "A write replaces the owner like the value and expiry (none: unowned).",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"value": {"step": 3, "plan": ["a", "b"]}}]}
    )
