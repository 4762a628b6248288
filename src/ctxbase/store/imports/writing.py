"""Writing one checked batch: every row inserted with Core statements (one per table, many
rows each), the counters and links of rows already in the project updated, and the
vectors of messages, context units and memories stored beside them.

Full-text indexes need nothing more: SQLite's FTS5 tables follow their tables by trigger,
PostgreSQL indexes the content expression itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from pydantic import TypeAdapter
from sqlalchemy import Connection, Table, bindparam, insert, update

from ctxbase.db.schema import new_id
from ctxbase.store.embedding import Vectors, embeddings_table, text_hash
from ctxbase.store.imports.checking import (
    Checked,
    contexts_table,
    conversations_table,
    events_table,
    memories_table,
    messages_table,
    state_table,
    streams_table,
)
from ctxbase.store.imports.planning import Pending
from ctxbase.store.memories import HISTORY

if TYPE_CHECKING:
    from ctxbase.db.database import Database
    from ctxbase.store.embedding import Embeddings

_json_time: TypeAdapter[datetime | None] = TypeAdapter(datetime | None)
#: The kinds embedded on write, as the store names them.
EMBEDDED = ("message", "context", "memory")
#: Who the history of an imported memory says added it.
IMPORT_ACTOR = "import"


@dataclass(frozen=True)
class LineVectors:
    """Vectors computed before the transaction: per kind, the model and each line's."""

    models: dict[str, str | None]
    by_line: dict[int, np.ndarray | None]
    texts: dict[int, str]  # what each line's vector was made from

    def of(self, kind: str, rows: list[Pending]) -> Vectors:
        return Vectors(self.models.get(kind), [self.by_line.get(p.parsed.number) for p in rows])

    def items(self, rows: list[Pending]) -> list[tuple[uuid.UUID, str]]:
        """(item id, embedded text) of each row."""
        return [(cast(uuid.UUID, p.id), self.texts[p.parsed.number]) for p in rows]


class BatchWrites:
    """The inserts and updates of one checked batch, on its transaction.

    Rows go in through prepared statements on the transaction's own driver cursor (see
    :mod:`ctxbase.db.prepared`): SQLAlchemy's per-row parameter handling would cost more
    than the inserts themselves.
    """

    def __init__(
        self,
        connection: Connection,
        db: Database,
        embeddings: Embeddings,
        project_id: uuid.UUID,
        tenant_id: uuid.UUID,
        now: datetime,
    ) -> None:
        self.c = connection
        self.db = db
        self.cursor = connection.connection.cursor()
        self.embeddings = embeddings
        self.project_id = project_id
        self.tenant_id = tenant_id
        self.now = now

    def run(self, checked: Checked, vectors: LineVectors) -> int:
        """Write everything; returns how many vectors were stored."""
        self._conversations(checked)
        self._messages(checked)
        self._contexts(checked)
        self._memories(checked)
        self._state(checked)
        self._events(checked)
        embedded = 0
        for kind in EMBEDDED:
            rows = checked.of_kind(kind)
            if not rows:
                continue
            stored = self.embeddings.rows(
                kind, self.project_id, vectors.items(rows), vectors.of(kind, rows)
            )
            self._insert(embeddings_table, stored)  # new items: no vector to collide with
            embedded += len(stored)
        return embedded

    def _insert(self, target: Table, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows``, each with a value for every column of ``target``: with
        ``COPY`` where the backend loads in bulk, else one prepared INSERT run per row."""
        if not rows:
            return
        if self.db.backend.bulk_loads:
            from ctxbase.transfer.postgres import PostgresCopyWriter

            columns = list(target.columns)
            copy = PostgresCopyWriter(self.c, target, columns, from_sqlite=False)
            keys = [column.key for column in columns]
            copy.write(self.c, copy.encode_rows([[row[k] for k in keys] for row in rows]))
            return
        statement = self.db.prepared(f"imports.{target.name}", lambda: insert(target))
        statement.many(self.cursor, rows)

    def _stamps(self, row: Any) -> dict[str, datetime]:
        created = row.created_at or self.now
        return {"created_at": created, "updated_at": row.updated_at or created}

    def _conversations(self, checked: Checked) -> None:
        rows = []
        for item in checked.of_kind("conversation"):
            counters = checked.counters[item.id]  # type: ignore[index]
            fields = item.row.model_dump(exclude={"kind", "id", "created_at", "updated_at"})
            rows.append(
                {
                    **fields,
                    "id": item.id,
                    "project_id": self.project_id,
                    "message_count": counters.message_count,
                    "input_tokens": counters.input_tokens,
                    "output_tokens": counters.output_tokens,
                    **self._stamps(item.row),
                }
            )
        self._insert(conversations_table, rows)

    def _messages(self, checked: Checked) -> None:
        rows = []
        for item in checked.of_kind("message"):
            fields = item.row.model_dump(
                exclude={"kind", "id", "conversation_id", "position", "created_at", "updated_at"}
            )
            rows.append(
                {
                    **fields,
                    "id": item.id,
                    "project_id": self.project_id,
                    "conversation_id": item.refs["conversation_id"],
                    "position": checked.positions[item.parsed.number],
                    **self._stamps(item.row),
                }
            )
        self._insert(messages_table, rows)
        # Conversations already in the project: their counters move on, their timestamps
        # stay as they were (imported rows keep their times).
        c = conversations_table.c
        stored = [
            {
                "b_id": conversation_id,
                "b_count": counters.message_count,
                "b_input": counters.input_tokens,
                "b_output": counters.output_tokens,
            }
            for conversation_id, counters in checked.counters.items()
            if counters.stored and counters.added
        ]
        if stored:
            self.c.execute(
                update(conversations_table)
                .where(c.id == bindparam("b_id"))
                .values(
                    message_count=bindparam("b_count"),
                    input_tokens=c.input_tokens + bindparam("b_input"),
                    output_tokens=c.output_tokens + bindparam("b_output"),
                    updated_at=c.updated_at,  # not the column's onupdate: times stay
                ),
                stored,
            )

    def _contexts(self, checked: Checked) -> None:
        rows = []
        for item in checked.of_kind("context"):
            fields = item.row.model_dump(
                exclude={"kind", "id", "version", "supersedes", "created_at", "updated_at"}
            )
            rows.append(
                {
                    **fields,
                    "id": item.id,
                    "project_id": self.project_id,
                    "content_hash": text_hash(item.row.content),
                    "version": checked.versions[item.parsed.number],
                    "superseded_by": checked.superseded.get(item.id),  # type: ignore[arg-type]
                    **self._stamps(item.row),
                }
            )
        # A version points at a later one: the later is inserted first.
        self._insert(contexts_table, rows[::-1])
        links = [
            {"b_id": old, "b_new": checked.superseded[old]} for old in checked.stored_superseded
        ]
        if links:
            x = contexts_table.c
            self.c.execute(
                update(contexts_table)
                .where(x.id == bindparam("b_id"))
                .values(superseded_by=bindparam("b_new"), updated_at=x.updated_at),
                links,
            )

    def _memories(self, checked: Checked) -> None:
        rows, changes = [], []
        for item in checked.of_kind("memory"):
            fields = item.row.model_dump(
                exclude={"kind", "id", "created_at", "updated_at", *item.refs}
            )
            row = {
                **fields,
                **item.refs,
                "id": item.id,
                "project_id": self.project_id,
                **self._stamps(item.row),
            }
            rows.append(row)
            # What memories.add records, in the same JSON form.
            tracked = {name: row[name] for name in HISTORY.tracks}
            tracked["expires_at"] = _json_time.dump_python(row["expires_at"], mode="json")
            memory_id = cast(uuid.UUID, item.id)
            changes.append(
                HISTORY.entry(memory_id, "add", None, tracked, IMPORT_ACTOR, row["created_at"])
            )
        self._insert(memories_table, rows)
        self._insert(HISTORY.table, changes)

    def _state(self, checked: Checked) -> None:
        rows = []
        for item in checked.of_kind("state"):
            assert item.state_key is not None
            namespace, key = item.state_key
            rows.append(
                {
                    "id": new_id(),
                    "project_id": self.project_id,
                    "namespace": namespace,
                    "key": key,
                    "value": item.row.value,
                    "version": item.row.version,
                    "expires_at": item.row.expires_at,
                    "owner_conversation_id": item.refs["owner_conversation_id"],
                    **self._stamps(item.row),
                }
            )
        self._insert(state_table, rows)

    def _events(self, checked: Checked) -> None:
        rows = [
            {
                "id": item.id,
                "project_id": self.project_id,
                "tenant_id": self.tenant_id,
                "sequence": checked.sequences[item.parsed.number],
                "event_type": item.row.event_type,
                "data": item.row.data,
                "metadata": item.row.metadata,
                "created_at": item.row.created_at or self.now,
            }
            for item in checked.of_kind("event")
        ]
        self._insert(events_table, rows)
        if rows:
            self.c.execute(
                update(streams_table)
                .where(streams_table.c.project_id == self.project_id)
                .values(last_sequence=checked.last_sequence)
            )
