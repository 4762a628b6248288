"""Conversations and their messages.

Positions are handed out by one ``UPDATE conversations SET message_count = … RETURNING``
in the same transaction as the inserts: the row lock (PostgreSQL) or the write lock
(SQLite) makes concurrent appends queue, so positions are gapless and never repeated.

A message's content, thinking and metadata can be edited; each edit keeps the old and
new values in ``message_changes`` and new content is embedded and indexed anew. What
happened (role, position, tokens, finish reason) is not editable, so positions and the
conversation's token totals never change.

Deleting a conversation is one ``DELETE``: the schema's cascades take its messages (with
their embeddings, edits and full-text rows), its quality records and the memories and
state entries it owns, in that statement; memories that only came from it keep going
with their link cleared.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, TypeAdapter
from sqlalchemy import BigInteger, Integer, bindparam, insert, select, update

from ctxbase.db.schema import Conversation as ConversationRow
from ctxbase.db.schema import Message as MessageRow
from ctxbase.db.schema import MessageChange as MessageChangeRow
from ctxbase.db.schema import new_id, table, utcnow
from ctxbase.db.types import UTCDateTime
from ctxbase.errors import NotFoundError
from ctxbase.records import (
    INT32_MAX,
    Conversation,
    ConversationIn,
    ConversationPatch,
    Input,
    Message,
    MessageChange,
    MessageIn,
    MessagePatch,
    MessageRole,
    Page,
    Timestamp,
)
from ctxbase.store.base import (
    DEFAULT_PAGE,
    DEFAULT_PROJECT,
    Domain,
    History,
    Keyset,
    as_uuid,
    count_part,
    given,
    page_limit,
    parse,
    project_id_subquery,
    sequence_number,
    uuid_part,
)
from ctxbase.store.embedding import turns
from ctxbase.store.embedding.vectors import Vectors
from ctxbase.store.filters import metadata_matches

conversations_table = table(ConversationRow)
messages_table = table(MessageRow)
message_changes_table = table(MessageChangeRow)
c = conversations_table.c
m = messages_table.c
#: Fields of a message an edit may change, recorded in its history.
EDITABLE = ("content", "thinking", "metadata")
_edits = History(message_changes_table, "message_id", MessageChange, messages_table, EDITABLE)
_timestamp = TypeAdapter(Timestamp | None)
_conversation_pages = Keyset("conversations", (uuid_part,))
_message_pages = Keyset("messages", (count_part(INT32_MAX),))  # by position


class HealthRange(Input):
    """The health_score filters of a conversation list, checked like the REST query's."""

    min_health: Annotated[int, Field(ge=0, le=100)] | None = None
    max_health: Annotated[int, Field(ge=0, le=100)] | None = None


class Conversations(Domain):
    """``store.conversations``."""

    def create(
        self,
        *,
        title: str | None = None,
        task: str | None = None,
        agent_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        provider_config: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Conversation:
        """Start a conversation (see :class:`ConversationIn` for the fields)."""
        data = parse(ConversationIn, given(ConversationIn, locals()))
        self._check_text("task", data.task)
        self._check_json("metadata", data.metadata)
        self._check_json("provider_config", data.provider_config)
        now = utcnow()
        with self._db.connect(write=True) as connection:
            row = {
                **data.model_dump(),
                "id": new_id(),
                "project_id": self._project_id(connection, project),
                "message_count": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "health_score": None,
                "created_at": now,
                "updated_at": now,
            }
            connection.execute(insert(conversations_table), row)
        return Conversation.model_validate(row)

    def get(
        self, conversation_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> Conversation:
        return self._point_read(
            Conversation,
            "conversation",
            conversation_id,
            project,
            ("conversations.get", _select_conversation),
        )

    def list(
        self,
        *,
        project: str = DEFAULT_PROJECT,
        agent_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        metadata: dict[str, Any] | None = None,
        min_health: int | None = None,
        max_health: int | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[Conversation]:
        """Newest first. ``metadata`` keeps conversations whose metadata has those pairs;
        ``min_health``/``max_health`` keep those whose health_score is in that range
        (both inclusive: "below 50" is ``max_health=49``), leaving out unscored ones."""
        page_limit(limit)
        health = parse(HealthRange, given(HealthRange, locals()))
        after, before = (
            _timestamp.validate_python(created_after),
            _timestamp.validate_python(created_before),
        )
        within = self._list_of(project)
        last = _conversation_pages.decode(cursor, within)[0] if cursor else None
        with self._db.connect() as connection:
            query = select(conversations_table).where(
                c.project_id == self._project_id(connection, project)
            )
            if agent_id is not None:
                query = query.where(c.agent_id == agent_id)
            if after is not None:
                query = query.where(c.created_at >= after)
            if before is not None:
                query = query.where(c.created_at < before)
            if metadata:
                query = query.where(metadata_matches(c.metadata, metadata, self._db.backend))
            if health.min_health is not None:
                query = query.where(c.health_score >= health.min_health)
            if health.max_health is not None:
                query = query.where(c.health_score <= health.max_health)
            if last is not None:
                query = query.where(c.id < last)
            rows = connection.execute(query.order_by(c.id.desc()).limit(limit + 1))
            items = [Conversation.model_validate(r._mapping) for r in rows]
        return _conversation_pages.page(items, limit, lambda item: [item.id], within)

    def update(
        self,
        conversation_id: uuid.UUID | str,
        *,
        title: str | None = None,
        task: str | None = None,
        agent_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        provider_config: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        health_score: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Conversation:
        """Change the given fields; ``None`` leaves a field as it is."""
        patch = parse(ConversationPatch, given(ConversationPatch, locals()))
        self._check_text("task", patch.task)
        self._check_json("metadata", patch.metadata)
        self._check_json("provider_config", patch.provider_config)
        changes = patch.model_dump(exclude_none=True)
        conversation_id = as_uuid(conversation_id, "conversation")
        with self._db.connect(write=True) as connection:
            row = connection.execute(
                update(conversations_table)
                .where(
                    c.id == conversation_id, c.project_id == self._project_id(connection, project)
                )
                .values(**changes, updated_at=utcnow())
                .returning(*conversations_table.c)
            ).first()
        if row is None:
            raise NotFoundError(f"No conversation {conversation_id}")
        return Conversation.model_validate(row._mapping)

    def delete(self, conversation_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> None:
        """Delete the conversation with its messages (their embeddings and edits), its
        quality records and the state entries and memories it owns, all at once.
        Memories that name it only as ``conversation_id`` stay, with that link cleared."""
        self._delete_one(conversations_table, "conversation", conversation_id, project)


class Messages(Domain):
    """``store.messages``."""

    def append(
        self,
        conversation_id: uuid.UUID | str,
        *,
        role: MessageRole,
        content: str,
        thinking: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        finish_reason: str | None = None,
        metadata: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Message:
        """Append one message at the next position."""
        message = parse(MessageIn, given(MessageIn, locals()))
        return self.append_many(conversation_id, [message], project=project)[0]

    def append_many(
        self,
        conversation_id: uuid.UUID | str,
        messages: Iterable[MessageIn | dict[str, Any]],
        *,
        project: str = DEFAULT_PROJECT,
    ) -> list[Message]:
        """Append messages in order, all or none, at the next positions."""
        items = [parse(MessageIn, item) for item in messages]
        self._check_batch(len(items))
        for item in items:
            self._check_text("content", item.content)
            self._check_text("thinking", item.thinking)
            self._check_json("metadata", item.metadata)
        conversation_id = as_uuid(conversation_id, "conversation")
        texts = self._embedding_texts(conversation_id, items, project)
        vectors = self._store.embeddings.vectors_for("message", texts)
        now = utcnow()
        bump = self._db.prepared("messages.bump", _bump_conversation)
        add = self._db.prepared("messages.insert", lambda: insert(messages_table))
        params = {
            "id": conversation_id,
            "count": len(items),
            "input_tokens": sum(i.input_tokens for i in items),
            "output_tokens": sum(i.output_tokens for i in items),
            "now": now,
            **self._scope_params(project),
        }
        with self._db.raw(write=True) as cursor:
            bumped = bump.first(cursor, params)
            if bumped is None:
                raise NotFoundError(f"No conversation {conversation_id}")
            first = bumped["message_count"] - len(items) + 1
            rows = [
                {
                    **item.model_dump(),
                    "id": new_id(),
                    "project_id": bumped["project_id"],
                    "conversation_id": conversation_id,
                    "position": first + offset,
                    "created_at": now,
                    "updated_at": now,
                }
                for offset, item in enumerate(items)
            ]
            add.many(cursor, rows)
            embedded = self._store.embeddings.rows(
                "message",
                bumped["project_id"],
                [(r["id"], text) for r, text in zip(rows, texts, strict=True)],
                vectors,
            )
            if embedded:
                self._store.embeddings.insert_prepared(cursor, embedded)
        return [Message.model_validate(row) for row in rows]

    def _embedding_texts(
        self, conversation_id: uuid.UUID, items: list[MessageIn], project: str
    ) -> list[str]:
        """What the new messages are embedded from: each after the turns before it (read
        here, before the write, within the project; the write checks the conversation
        again, and nothing computed here is kept if that fails)."""
        window = self._store.embeddings.message_context
        if not window:
            return [item.content for item in items]
        in_project = self._project_sql(project)
        with self._db.read() as connection:
            before = turns.last_turns(connection, [conversation_id], window, in_project)
        return turns.embedding_texts(
            [turns.Turn.of(item) for item in items], before.get(conversation_id, []), window
        )

    def get(self, message_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> Message:
        return self._point_read(
            Message, "message", message_id, project, ("messages.get", _select_message)
        )

    def _edited_texts(
        self, message_id: uuid.UUID, patch: MessagePatch, project: str
    ) -> dict[uuid.UUID, str]:
        """The embedding texts an edit changes, read before the write: the message's own
        when its content (or, with context, its speaker) changes, and those of the
        messages whose context holds it. Empty when no vector changes."""
        window = self._store.embeddings.message_context
        if patch.content is None and (patch.metadata is None or not window):
            return {}
        in_project = self._project_sql(project)
        with self._db.read() as connection:
            return turns.texts_after_edit(
                connection, message_id, patch.content, patch.metadata, window, in_project
            )

    def update(
        self,
        message_id: uuid.UUID | str,
        *,
        content: str | None = None,
        thinking: str | None = None,
        metadata: dict[str, Any] | None = None,
        actor: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Message:
        """Edit the given fields (``None`` leaves one as it is); the old values go to the
        message's history with ``actor``. New content is embedded and indexed anew."""
        patch = parse(MessagePatch, given(MessagePatch, locals()))
        self._check_text("content", patch.content)
        self._check_text("thinking", patch.thinking)
        self._check_json("metadata", patch.metadata)
        self._check_actor(actor)
        changes = patch.model_dump(exclude_none=True)
        message_id = as_uuid(message_id, "message")
        embeddings = self._store.embeddings
        texts = self._edited_texts(message_id, patch, project)
        vectors = embeddings.vectors_for("message", list(texts.values()))
        now = utcnow()
        with self._db.connect(write=True) as connection:
            current = self._by_id(connection, project, message_id)
            message, changed = _edits.edit(connection, current, message_id, changes, actor, now)
            if texts and (changed & {"content", "metadata"}):
                for (item_id, text), vector in zip(texts.items(), vectors.values, strict=True):
                    made = Vectors(vectors.model, [vector])
                    embeddings.replace(
                        connection, "message", (message.project_id, item_id, text), made
                    )
        return message

    def history(
        self, message_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> list[MessageChange]:
        """Every edit of the message, oldest first (appending is not recorded)."""
        message_id = as_uuid(message_id, "message")
        with self._db.connect() as connection:
            self._by_id(connection, project, message_id)
            return _edits.of(connection, message_id)

    def list(
        self,
        conversation_id: uuid.UUID | str,
        *,
        project: str = DEFAULT_PROJECT,
        after: int | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[Message]:
        """Messages in position order, those after position ``after`` if given."""
        page_limit(limit)
        conversation_id = as_uuid(conversation_id, "conversation")
        start = sequence_number("after", after or 0)
        within = (*self._list_of(project), conversation_id)
        if cursor:
            (start,) = _message_pages.decode(cursor, within)
        params = {
            "id": conversation_id,
            "after": min(start, INT32_MAX),  # no position is larger
            "limit": limit + 1,
            **self._scope_params(project),
        }
        page = self._db.prepared("messages.page", _select_page)
        with self._db.raw() as driver_cursor:
            items = page.records(driver_cursor, params, Message)
            if not items:  # an empty page, or no such conversation in this project
                exists = self._db.prepared("conversations.exists", _conversation_exists)
                if exists.first(driver_cursor, params) is None:
                    raise NotFoundError(f"No conversation {conversation_id}")
        return _message_pages.page(items, limit, lambda item: [item.position], within)

    def _by_id(self, connection: Any, project: str, message_id: uuid.UUID) -> Message:
        return self._one(connection, messages_table, Message, "message", message_id, project)


# --- prepared statements (compiled once per database) --------------------------------------


def _select_conversation() -> Any:
    return select(conversations_table).where(
        c.id == bindparam("id"), c.project_id == project_id_subquery()
    )


def _conversation_exists() -> Any:
    return select(c.id).where(c.id == bindparam("id"), c.project_id == project_id_subquery())


def _select_page() -> Any:
    """Messages after a position, in order; the project is checked on every row, so a
    conversation of another project gives an empty page."""
    return (
        select(messages_table)
        .where(
            m.conversation_id == bindparam("id"),
            m.position > bindparam("after", type_=Integer),
            m.project_id == project_id_subquery(),
        )
        .order_by(m.position)
        .limit(bindparam("limit", type_=Integer))
    )


def _select_message() -> Any:
    return select(messages_table).where(
        m.id == bindparam("id"), m.project_id == project_id_subquery()
    )


def _bump_conversation() -> Any:
    """Hands out the next positions: the row lock it takes serialises appends."""
    return (
        update(conversations_table)
        .where(c.id == bindparam("id"), c.project_id == project_id_subquery())
        .values(
            message_count=c.message_count + bindparam("count", type_=Integer),
            input_tokens=c.input_tokens + bindparam("input_tokens", type_=BigInteger),
            output_tokens=c.output_tokens + bindparam("output_tokens", type_=BigInteger),
            updated_at=bindparam("now", type_=UTCDateTime()),
        )
        .returning(c.message_count, c.project_id)
    )
