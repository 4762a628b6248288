"""Rows of another system moving into ctxbase: one model per kind, the request that carries
them and the report of an import.

One row is one JSON object with a ``kind`` (``conversation``, ``message``, ``context``,
``memory``, ``state``, ``event``); its other fields are the public record's, with the
row's ``id``, ``created_at`` and ``updated_at`` kept as given. An id, and every reference
to one, is a UUID or any other text or integer: those that are not UUIDs are mapped to a
stable UUID (:func:`mapped_id`). The format is described in ``docs/moving-in.md``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from ctxbase.records.values import (
    INT32_MAX,
    Input,
    JSONObject,
    JSONValue,
    MessageRole,
    Text,
    Timestamp,
    Tokens,
)

ROW_KINDS = ("conversation", "message", "context", "memory", "state", "event")
RowKind = Literal["conversation", "message", "context", "memory", "state", "event"]
#: The namespace of the UUIDs given to ids that are not UUIDs (unless the import names
#: its own): ``uuid5(IMPORT_NAMESPACE, f"{kind}:{original}")``.
IMPORT_NAMESPACE = uuid.UUID("23c1714c-2ecf-5576-a8d0-633766e89ff9")
MAX_IMPORT_BATCH = 10_000

#: An id as the source system wrote it: a UUID, or any other text or integer.
OriginalId = Annotated[int, Strict()] | Annotated[Text, Field(min_length=1, max_length=500)]


def mapped_id(kind: str, original: int | str, namespace: uuid.UUID = IMPORT_NAMESPACE) -> uuid.UUID:
    """The ctxbase id of ``original``: itself when it is a UUID, else the same UUID every
    time, ``uuid5(namespace, "<kind>:<original>")`` (``42`` and ``"42"`` alike)."""
    found = uuid_or_none(original)
    return found if found is not None else uuid.uuid5(namespace, f"{kind}:{original}")


#: Lengths of the forms of a UUID ``uuid.UUID`` reads (hex, hyphens, braces, URN).
_UUID_LENGTHS = frozenset({32, 36, 38, 45})


def uuid_or_none(original: int | str) -> uuid.UUID | None:
    """``original`` as a UUID if it is text spelling one, else None."""
    if not isinstance(original, str) or len(original) not in _UUID_LENGTHS:
        return None
    try:
        return uuid.UUID(original)
    except ValueError:
        return None


class _Row(Input):
    created_at: Timestamp | None = Field(None, description="Default: the time of the import.")
    updated_at: Timestamp | None = Field(None, description="Default: `created_at`.")


class _IdentifiedRow(_Row):
    id: OriginalId | None = Field(None, description="Default: a new id (not re-runnable).")


class ConversationRow(_IdentifiedRow):
    kind: Literal["conversation"]
    title: Annotated[Text, Field(max_length=500)] | None = None
    task: Text | None = None
    agent_id: Annotated[Text, Field(max_length=200)] | None = None
    provider: Annotated[Text, Field(max_length=100)] | None = None
    model: Annotated[Text, Field(max_length=200)] | None = None
    provider_config: JSONObject = Field(default_factory=dict)
    metadata: JSONObject = Field(default_factory=dict)
    health_score: Annotated[int, Field(ge=0, le=100)] | None = None


class MessageRow(_IdentifiedRow):
    kind: Literal["message"]
    conversation_id: OriginalId
    position: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = Field(
        None, description="Default: the conversation's next; given, it must be that one."
    )
    role: MessageRole
    content: Text
    thinking: Text | None = None
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    finish_reason: Annotated[Text, Field(max_length=64)] | None = None
    metadata: JSONObject = Field(default_factory=dict)


class ContextRow(_IdentifiedRow):
    kind: Literal["context"]
    name: Annotated[Text, Field(min_length=1, max_length=1000)]
    content: Text
    source_type: Annotated[Text, Field(min_length=1, max_length=64)] = "note"
    metadata: JSONObject = Field(default_factory=dict)
    version: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = Field(
        None,
        description="Default: one more than the versions it supersedes and those of its name.",
    )
    supersedes: OriginalId | None = Field(
        None,
        description="A latest unit of another name this one replaces too (a rename or a "
        "merge); the latest version of its own name is always superseded.",
    )


class MemoryRow(_IdentifiedRow):
    kind: Literal["memory"]
    content: Annotated[Text, Field(min_length=1)]
    agent_id: Annotated[Text, Field(max_length=200)] | None = None
    user_id: Annotated[Text, Field(max_length=200)] | None = None
    conversation_id: OriginalId | None = None
    first_message_id: OriginalId | None = None
    owner_conversation_id: OriginalId | None = None
    memory_type: Annotated[Text, Field(min_length=1, max_length=32)] = "semantic"
    importance: Annotated[float, Field(ge=0, le=1)] = 0.5
    metadata: JSONObject = Field(default_factory=dict)
    access_count: Annotated[int, Field(ge=0, le=INT32_MAX)] = 0
    last_accessed_at: Timestamp | None = None
    expires_at: Timestamp | None = None


class StateRow(_Row):
    """A state entry is named by its namespace and key; it has no id of its own."""

    kind: Literal["state"]
    namespace: Annotated[Text, Field(max_length=500)] = ""
    key: Annotated[Text, Field(min_length=1, max_length=500)]
    value: JSONValue
    version: Annotated[int, Field(ge=1, le=INT32_MAX)] = 1
    expires_at: Timestamp | None = None
    owner_conversation_id: OriginalId | None = None


class EventRow(Input):
    kind: Literal["event"]
    id: OriginalId | None = None
    sequence: Annotated[int, Field(ge=1, le=2**62)] | None = Field(
        None, description="Default: the stream's next; given, it must be that one."
    )
    event_type: Annotated[Text, Field(min_length=1, max_length=200)]
    data: JSONValue = Field(default_factory=dict)
    metadata: JSONObject = Field(default_factory=dict)
    created_at: Timestamp | None = None


ImportRow = ConversationRow | MessageRow | ContextRow | MemoryRow | StateRow | EventRow
ROW_MODELS: dict[str, type[ImportRow]] = {
    "conversation": ConversationRow,
    "message": MessageRow,
    "context": ContextRow,
    "memory": MemoryRow,
    "state": StateRow,
    "event": EventRow,
}


def _plain(value: Any) -> Any:
    """A row given as a model, as the JSON object it stands for."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return value


#: One row as sent: a JSON object, or a line of JSON text holding one.
RowInput = Annotated[dict[str, Any] | str, BeforeValidator(_plain)]
ExistingRows = Literal["error", "skip"]


def _lines_of(value: Any) -> Any:
    """A whole JSON Lines document given as one text: its lines, blank ones included (so
    that errors count lines as the document does)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.splitlines() if isinstance(value, str) else value


class RowsImport(Input):
    """Rows to import into the project, in order (see ``docs/moving-in.md``)."""

    rows: Annotated[list[RowInput], BeforeValidator(_lines_of)] = Field(
        description="One JSON object per row (or a line of JSON text holding one), each with "
        "its `kind`: conversation, message, context, memory, state or event. A whole JSON "
        "Lines document may also be given as one string."
    )
    batch_size: Annotated[int, Field(ge=1, le=MAX_IMPORT_BATCH)] = Field(
        1000, description="Rows per transaction: each batch is written all or nothing."
    )
    existing: ExistingRows = Field(
        "error",
        description="A row whose id (a state entry: namespace and key) is already in the "
        "project: `error` refuses its batch, `skip` leaves the stored row as it is.",
    )
    id_namespace: uuid.UUID | None = Field(
        None, description="Namespace of the UUIDs given to ids that are not UUIDs."
    )
    first_line: Annotated[int, Field(ge=1, le=2**62)] = Field(
        1, description="The number errors give the first row (for a file sent in parts)."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rows": [
                        {
                            "kind": "conversation",
                            "id": "c-17",
                            "title": "Billing drift",
                            "created_at": "2024-03-01T09:00:00Z",
                        },
                        {
                            "kind": "message",
                            "id": 981,
                            "conversation_id": "c-17",
                            "role": "user",
                            "content": "Why does the invoice total drift?",
                            "created_at": "2024-03-01T09:00:05Z",
                        },
                    ],
                    "batch_size": 500,
                }
            ]
        }
    )


class ImportReport(BaseModel):
    """What an import wrote."""

    project: str
    rows: int = Field(description="Rows read (blank lines are not rows).")
    written: dict[str, int] = Field(description="Rows written, per kind.")
    skipped: dict[str, int] = Field(
        description="Rows left alone because their id was already in the project, per kind."
    )
    batches: int = Field(description="Transactions committed.")
    embedded: int = Field(description="Vectors written for messages, contexts and memories.")
    ids: dict[str, dict[str, uuid.UUID]] = Field(
        description="Per kind, each original id that is not a UUID and the id it was given."
    )
    seconds: float
