"""Memories: long-term facts and episodes with importance, access counts and expiry.

Every add and update is recorded in the memory's history (old and new values, when, by
whom). Reading a memory by id counts as an access; listing does not, so browsing
(e.g. in the console) leaves the ranking signals alone. Expired memories are never
returned; ``prune`` deletes them.

A memory names the conversation it came from (``conversation_id``) and outlives it: only
the link is cleared. A memory may also be owned by a conversation
(``owner_conversation_id``, asked for explicitly); it is then deleted with it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from ctxbase.db.schema import Memory as MemoryRow
from ctxbase.db.schema import MemoryChange as MemoryChangeRow
from ctxbase.db.schema import Message as MessageRow
from ctxbase.db.schema import new_id, table, utcnow
from ctxbase.errors import NotFoundError
from ctxbase.records import Memory, MemoryChange, MemoryIn, MemoryPatch, Page
from ctxbase.store.base import (
    DEFAULT_PAGE,
    DEFAULT_PROJECT,
    Domain,
    History,
    Keyset,
    as_uuid,
    given,
    page_limit,
    parse,
    uuid_part,
)
from ctxbase.store.references import check_conversation, no_such

memories_table = table(MemoryRow)
changes_table = table(MemoryChangeRow)
messages_table = table(MessageRow)
mem = memories_table.c
_pages = Keyset("memories", (uuid_part,))

#: Fields a history entry records.
TRACKED = ("content", "memory_type", "importance", "metadata", "expires_at")
HISTORY = History(changes_table, "memory_id", MemoryChange, memories_table, TRACKED)


def _alive(now: Any) -> Any:
    return or_(mem.expires_at.is_(None), mem.expires_at > now)


class Memories(Domain):
    """``store.memories``."""

    def add(
        self,
        content: str,
        *,
        agent_id: str | None = None,
        user_id: str | None = None,
        conversation_id: uuid.UUID | str | None = None,
        first_message_id: uuid.UUID | str | None = None,
        owner_conversation_id: uuid.UUID | str | None = None,
        memory_type: str = "semantic",
        importance: float = 0.5,
        metadata: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
        ttl_seconds: int | None = None,
        actor: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Memory:
        """Remember ``content`` (see :class:`MemoryIn` for the fields); ``actor`` is
        recorded in the memory's history. With ``owner_conversation_id`` the memory is
        deleted with that conversation."""
        data = parse(MemoryIn, given(MemoryIn, locals()))
        self._check_text("content", data.content)
        self._check_json("metadata", data.metadata)
        self._check_actor(actor)
        now = utcnow()
        values = data.model_dump(exclude={"ttl_seconds"})
        if data.ttl_seconds is not None:
            values["expires_at"] = now + timedelta(seconds=data.ttl_seconds)
        row = {
            **values,
            "id": new_id(),
            "access_count": 0,
            "last_accessed_at": None,
            "created_at": now,
            "updated_at": now,
        }
        embeddings = self._store.embeddings
        vector = embeddings.vectors_for("memory", [data.content])
        with self._db.connect(write=True) as connection:
            row["project_id"] = self._project_id(connection, project)
            check_references(connection, row["project_id"], project, data)
            connection.execute(insert(memories_table), row)
            embeddings.insert(
                connection,
                embeddings.rows("memory", row["project_id"], [(row["id"], data.content)], vector),
            )
            memory = Memory.model_validate(row)
            added = HISTORY.entry(memory.id, "add", None, HISTORY.values(memory), actor, now)
            connection.execute(insert(changes_table), added)
        return memory

    def get(self, memory_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> Memory:
        """The memory, counted as one access."""
        memory_id = as_uuid(memory_id, "memory")
        now = utcnow()
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            row = connection.execute(
                update(memories_table)
                .where(mem.id == memory_id, mem.project_id == project_id, _alive(now))
                .values(access_count=mem.access_count + 1, last_accessed_at=now)
                .returning(*memories_table.c)
            ).first()
        if row is None:
            raise NotFoundError(f"No memory {memory_id}")
        return Memory.model_validate(row._mapping)

    def update(
        self,
        memory_id: uuid.UUID | str,
        *,
        content: str | None = None,
        memory_type: str | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
        clear_expiry: bool = False,
        actor: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Memory:
        """Change the given fields (``None`` leaves one as it is) and record the change;
        ``clear_expiry=True`` removes the expiry (with ``expires_at`` too: InvalidInputError)."""
        patch = parse(MemoryPatch, given(MemoryPatch, locals()))
        self._check_text("content", patch.content)
        self._check_json("metadata", patch.metadata)
        self._check_actor(actor)
        changes: dict[str, Any] = patch.model_dump(exclude_none=True, exclude={"clear_expiry"})
        if patch.clear_expiry:
            changes["expires_at"] = None
        memory_id = as_uuid(memory_id, "memory")
        embeddings = self._store.embeddings
        vectors = embeddings.vectors_for("memory", [patch.content] if patch.content else [])
        now = utcnow()
        with self._db.connect(write=True) as connection:
            current = self._alive_by_id(connection, project, memory_id, now)
            memory, changed = HISTORY.edit(connection, current, memory_id, changes, actor, now)
            if "content" in changed:
                item = (memory.project_id, memory_id, memory.content)
                embeddings.replace(connection, "memory", item, vectors)
        return memory

    def delete(self, memory_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> None:
        """Delete the memory, its history and its embeddings."""
        self._delete_one(memories_table, "memory", memory_id, project)

    def history(
        self, memory_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> list[MemoryChange]:
        """Every recorded change, oldest first."""
        memory_id = as_uuid(memory_id, "memory")
        with self._db.connect() as connection:
            self._alive_by_id(connection, project, memory_id, utcnow())
            return HISTORY.of(connection, memory_id)

    def list(
        self,
        *,
        project: str = DEFAULT_PROJECT,
        agent_id: str | None = None,
        user_id: str | None = None,
        memory_type: str | None = None,
        conversation_id: uuid.UUID | str | None = None,
        owner_conversation_id: uuid.UUID | str | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[Memory]:
        """Unexpired memories, newest first; not counted as accesses. ``conversation_id``
        keeps those that came from a conversation, ``owner_conversation_id`` those it owns."""
        page_limit(limit)
        within = self._list_of(project)
        last = _pages.decode(cursor, within)[0] if cursor else None
        with self._db.connect() as connection:
            query = select(memories_table).where(
                mem.project_id == self._project_id(connection, project), _alive(utcnow())
            )
            for column, value in (
                (mem.agent_id, agent_id),
                (mem.user_id, user_id),
                (mem.memory_type, memory_type),
            ):
                if value is not None:
                    query = query.where(column == value)
            for link, conversation in (
                (mem.conversation_id, conversation_id),
                (mem.owner_conversation_id, owner_conversation_id),
            ):
                if conversation is not None:
                    query = query.where(link == as_uuid(conversation, "conversation"))
            if last is not None:
                query = query.where(mem.id < last)
            rows = connection.execute(query.order_by(mem.id.desc()).limit(limit + 1))
            items = [Memory.model_validate(r._mapping) for r in rows]
        return _pages.page(items, limit, lambda item: [item.id], within)

    def prune(self, *, project: str = DEFAULT_PROJECT) -> int:
        """Delete the project's expired memories; returns how many."""
        with self._db.connect(write=True) as connection:
            done = connection.execute(
                delete(memories_table).where(
                    mem.project_id == self._project_id(connection, project),
                    mem.expires_at <= utcnow(),
                )
            )
        return int(done.rowcount)

    # --- helpers ---

    def _alive_by_id(
        self, connection: Connection, project: str, memory_id: uuid.UUID, now: Any
    ) -> Memory:
        return self._one(
            connection, memories_table, Memory, "memory", memory_id, project, _alive(now)
        )


def check_references(
    connection: Connection, project_id: uuid.UUID, project: str, data: MemoryIn
) -> None:
    """The conversations and first message a memory links to must be the caller's own:
    in its project (and the message in that conversation, when both are given). Anything
    else, another tenant's record included, is refused exactly as an id that does not
    exist, before the database's foreign keys could tell the two apart."""
    for field in ("conversation_id", "owner_conversation_id"):
        check_conversation(connection, project_id, project, field, getattr(data, field))
    if data.first_message_id is not None:
        query = select(messages_table.c.id).where(
            messages_table.c.id == data.first_message_id,
            messages_table.c.project_id == project_id,
        )
        if data.conversation_id is not None:
            query = query.where(messages_table.c.conversation_id == data.conversation_id)
        if connection.execute(query).first() is None:
            raise no_such("first_message_id", "message", project)


def prune_expired_memories(connection: Connection) -> int:
    """Delete every expired memory in the database; returns how many."""
    done = connection.execute(delete(memories_table).where(mem.expires_at <= utcnow()))
    return int(done.rowcount)
