"""The store adapter's SQL: items as state entries, their index as memories.

An item is the state entry ``<root>/<namespace>`` / ``<key>`` (see ``_paths``) whose value
is the item's value. Its time to live, when it has one, is a row of
``langgraph_item_ttls``; each indexed field's text is a memory (embedded and full-text
indexed like any other), linked to the entry by ``langgraph_item_memories``. A memory
expires with its item, and goes with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from ctxbase.db.schema import (
    LangGraphItemMemory,
    LangGraphItemTTL,
    MemoryChange,
    StateEntry,
    new_id,
    table,
    utcnow,
)
from ctxbase.db.schema import Memory as MemoryRow
from ctxbase.records import StateIn
from ctxbase.store.base import Domain, parse
from ctxbase.store.embedding import Vectors

if TYPE_CHECKING:
    from ctxbase.store.store import Store

entries = table(StateEntry)
ttls = table(LangGraphItemTTL)
links = table(LangGraphItemMemory)
memories = table(MemoryRow)
changes = table(MemoryChange)
s = entries.c
#: Rows read per query when scanning a namespace.
PAGE = 200
#: Ids per ``IN (...)`` list.
CHUNK = 500
#: The memory type of an item's indexed text.
MEMORY_TYPE = "semantic"


@dataclass
class Put:
    """An item to write (``value`` None: delete it), with its index texts."""

    namespace: str  # the state namespace
    key: str  # the state key
    labels: tuple[str, ...]  # the LangGraph namespace
    item_key: str  # the LangGraph key
    value: dict[str, Any] | None
    ttl_minutes: float | None
    texts: list[tuple[str, str]]  # (field, text) to index


def _alive(now: datetime) -> Any:
    return or_(s.expires_at.is_(None), s.expires_at > now)


def below(namespace: str) -> Any:
    """Entries in the state namespace ``namespace`` or under it."""
    escaped = namespace.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(s.namespace == namespace, s.namespace.like(escaped + "/%", escape="\\"))


_COLUMNS = (
    s.id,
    s.namespace,
    s.key,
    s.value,
    s.created_at,
    s.updated_at,
    s.expires_at,
    ttls.c.ttl_minutes,
)


def _read(*conditions: Any) -> Any:
    return (
        select(*_COLUMNS)
        .select_from(entries.outerjoin(ttls, ttls.c.state_entry_id == s.id))
        .where(*conditions)
    )


class Items(Domain):
    """Items of one project under one root namespace."""

    def __init__(self, store: Store, project_id: uuid.UUID, root: str) -> None:
        super().__init__(store)
        self.project_id = project_id
        self.root = root

    # --- reading ---

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        query = _read(
            s.project_id == self.project_id,
            s.namespace == namespace,
            s.key == key,
            _alive(utcnow()),
        )
        with self._db.read() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else dict(row)

    def scan(self, namespace: str) -> Iterator[list[dict[str, Any]]]:
        """Pages of the items in ``namespace`` and under it, last updated first; no
        connection is held between pages."""
        conditions = [s.project_id == self.project_id, below(namespace), _alive(utcnow())]
        order = (s.updated_at.desc(), s.namespace, s.key)
        last: dict[str, Any] | None = None
        while True:
            query = _read(*conditions)
            if last is not None:  # keyset: after the last row read, in this order
                query = query.where(
                    or_(
                        s.updated_at < last["updated_at"],
                        and_(
                            s.updated_at == last["updated_at"],
                            or_(
                                s.namespace > last["namespace"],
                                and_(s.namespace == last["namespace"], s.key > last["key"]),
                            ),
                        ),
                    )
                )
            with self._db.read() as connection:
                rows = connection.execute(query.order_by(*order).limit(PAGE)).mappings()
                page = [dict(row) for row in rows]
            yield page
            if len(page) < PAGE:
                return
            last = page[-1]

    def by_memory(self, memory_ids: Sequence[uuid.UUID], namespace: str) -> dict[Any, Any]:
        """The unexpired items in or under ``namespace`` that these memories index, by
        memory id."""
        found: dict[Any, Any] = {}
        with self._db.read() as connection:
            for chunk in _chunks(list(memory_ids)):
                query = (
                    _read(
                        s.project_id == self.project_id,
                        links.c.memory_id.in_(chunk),
                        below(namespace),
                        _alive(utcnow()),
                    )
                    .add_columns(links.c.memory_id)
                    .join_from(entries, links, links.c.state_entry_id == s.id)
                )
                for row in connection.execute(query).mappings():
                    found[row["memory_id"]] = dict(row)
        return found

    def namespaces(self, namespace: str) -> list[str]:
        """The state namespaces holding unexpired items in or under ``namespace``."""
        query = (
            select(s.namespace)
            .distinct()
            .where(s.project_id == self.project_id, below(namespace), _alive(utcnow()))
        )
        with self._db.read() as connection:
            return [row[0] for row in connection.execute(query)]

    # --- writing ---

    def write(self, puts: Sequence[Put]) -> None:
        """Write and delete items in one transaction, their index with them. Texts are
        embedded first (before the transaction, as the store does)."""
        for put in puts:
            if put.value is not None:
                parse(StateIn, {"value": put.value})  # JSON a database can hold
                self._check_json("value", put.value)
                for _, text in put.texts:
                    self._check_text("indexed text", text)
        texts = [text for put in puts if put.value is not None for _, text in put.texts]
        vectors = self._store.embeddings.vectors_for("memory", texts)
        now = utcnow()
        with self._db.connect(write=True) as connection:
            start = 0
            for put in puts:
                if put.value is None:
                    self._delete(connection, put)
                    continue
                count = len(put.texts)
                batch = Vectors(vectors.model, vectors.values[start : start + count])
                start += count
                self._put(connection, put, batch, now)

    def _put(self, connection: Connection, put: Put, vectors: Vectors, now: datetime) -> None:
        expires = None
        if put.ttl_minutes is not None:
            expires = now + timedelta(minutes=put.ttl_minutes)
        statement = self._db.backend.insert(entries).values(
            id=new_id(),
            project_id=self.project_id,
            namespace=put.namespace,
            key=put.key,
            value=put.value,
            version=1,
            expires_at=expires,
            created_at=now,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["project_id", "namespace", "key"],
            set_={  # a write sets the whole entry (as the state API's): never owned
                "value": statement.excluded.value,
                "version": s.version + 1,
                "expires_at": statement.excluded.expires_at,
                "owner_conversation_id": None,
                "updated_at": now,
            },
        )
        entry_id = connection.execute(statement.returning(s.id)).scalar_one()
        connection.execute(delete(ttls).where(ttls.c.state_entry_id == entry_id))
        if put.ttl_minutes is not None:
            connection.execute(
                insert(ttls),
                {
                    "state_entry_id": entry_id,
                    "project_id": self.project_id,
                    "ttl_minutes": put.ttl_minutes,
                },
            )
        self._index(connection, put, entry_id, vectors, expires, now)

    def _index(
        self,
        connection: Connection,
        put: Put,
        entry_id: uuid.UUID,
        vectors: Vectors,
        expires: datetime | None,
        now: datetime,
    ) -> None:
        """Make the item's memories the texts of ``put``: a text indexed already keeps
        its memory (and vector); the others come and go."""
        current = connection.execute(
            select(links.c.memory_id, links.c.field, memories.c.content)
            .join(memories, memories.c.id == links.c.memory_id)
            .where(links.c.state_entry_id == entry_id)
        ).all()
        kept: dict[tuple[str, str], uuid.UUID] = {}
        for memory_id, field, content in current:
            kept.setdefault((field, content), memory_id)
        wanted = list(zip(put.texts, vectors.values, strict=True))
        keep = {kept[pair] for pair, _ in wanted if pair in kept}
        gone = [memory_id for memory_id, _, _ in current if memory_id not in keep]
        for chunk in _chunks(gone):
            connection.execute(delete(memories).where(memories.c.id.in_(chunk)))
        if keep:
            _expire_memories(connection, memories.c.id.in_(keep), expires)
        fresh = [(pair, vector) for pair, vector in wanted if pair not in kept]
        if fresh:
            self._add_memories(connection, put, entry_id, fresh, vectors.model, expires, now)

    def _add_memories(
        self,
        connection: Connection,
        put: Put,
        entry_id: uuid.UUID,
        texts: list[tuple[tuple[str, str], Any]],
        model: str | None,
        expires: datetime | None,
        now: datetime,
    ) -> None:
        rows, link_rows, history, owned = [], [], [], []
        for (field, text), _ in texts:
            memory_id = new_id()
            metadata = self._memory_metadata(put, field)
            rows.append(
                {
                    "id": memory_id,
                    "project_id": self.project_id,
                    "content": text,
                    "memory_type": MEMORY_TYPE,
                    "importance": 0.5,
                    "metadata": metadata,
                    "access_count": 0,
                    "expires_at": expires,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            link_rows.append(
                {
                    "memory_id": memory_id,
                    "project_id": self.project_id,
                    "state_entry_id": entry_id,
                    "field": field,
                }
            )
            tracked = {
                "content": text,
                "memory_type": MEMORY_TYPE,
                "importance": 0.5,
                "metadata": metadata,
                "expires_at": None if expires is None else expires.isoformat(),
            }
            history.append(
                {
                    "id": new_id(),
                    "memory_id": memory_id,
                    "action": "add",
                    "old_value": None,
                    "new_value": tracked,
                    "actor": "langgraph",
                    "created_at": now,
                }
            )
            owned.append((memory_id, text))
        connection.execute(insert(memories), rows)
        connection.execute(insert(links), link_rows)
        connection.execute(insert(changes), history)
        embeddings = self._store.embeddings
        vectors = Vectors(model, [vector for _, vector in texts])
        embeddings.insert(connection, embeddings.rows("memory", self.project_id, owned, vectors))

    def _memory_metadata(self, put: Put, field: str) -> dict[str, Any]:
        """What a memory says of the item it indexes, and one key per depth of the
        item's namespace (``langgraph_ns<depth>``: the state namespace down to that
        depth), so a search in a namespace and under it is one metadata filter."""
        metadata: dict[str, Any] = {
            "langgraph": {"namespace": list(put.labels), "key": put.item_key, "field": field}
        }
        segments = put.namespace.split("/")
        depth_of_root = len(self.root.split("/"))
        for depth in range(len(put.labels) + 1):
            metadata[prefix_key(depth)] = "/".join(segments[: depth_of_root + depth])
        return metadata

    def _delete(self, connection: Connection, put: Put) -> None:
        entry = select(s.id).where(
            s.project_id == self.project_id, s.namespace == put.namespace, s.key == put.key
        )
        self._delete_entries(connection, entry)

    def _delete_entries(self, connection: Connection, entry_ids: Any) -> None:
        """Delete entries (a subquery of their ids) and the memories indexing them."""
        indexing = select(links.c.memory_id).where(links.c.state_entry_id.in_(entry_ids))
        connection.execute(delete(memories).where(memories.c.id.in_(indexing)))
        connection.execute(delete(entries).where(s.id.in_(entry_ids)))

    def refresh(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Extend the expiry of the items read (those with a time to live) by as much
        again from now, their memories' with it."""
        timed = [(row["id"], row["ttl_minutes"]) for row in rows if row["ttl_minutes"]]
        if not timed:
            return
        now = utcnow()
        with self._db.connect(write=True) as connection:
            for entry_id, minutes in timed:
                expires = now + timedelta(minutes=minutes)
                # a read changes no value: updated_at stays (it would follow by default)
                connection.execute(
                    update(entries)
                    .where(s.id == entry_id)
                    .values(expires_at=expires, updated_at=s.updated_at)
                )
                indexing = select(links.c.memory_id).where(links.c.state_entry_id == entry_id)
                _expire_memories(connection, memories.c.id.in_(indexing), expires)

    def sweep(self) -> int:
        """Delete the expired items under the root, and their memories; how many."""
        expired = select(s.id).where(
            s.project_id == self.project_id, below(self.root), s.expires_at <= utcnow()
        )
        with self._db.connect(write=True) as connection:
            count = len(connection.execute(expired).all())
            if count:
                self._delete_entries(connection, expired)
        return count


def _expire_memories(connection: Connection, which: Any, expires: datetime | None) -> None:
    """Set when these memories expire (their item's expiry), leaving ``updated_at``."""
    connection.execute(
        update(memories).where(which).values(expires_at=expires, updated_at=memories.c.updated_at)
    )


def prefix_key(depth: int) -> str:
    """The metadata key of an item memory's namespace down to ``depth`` labels."""
    return f"langgraph_ns{depth}"


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
