"""The storage shared by the four kinds of quality record (``store.quality``): adding
with checked message links, listing by time with cursors, updating and deleting, always
inside one conversation of the caller's project."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection, Table, and_, delete, insert, or_, select, update

from ctxbase.db.schema import Citation as CitationRow
from ctxbase.db.schema import Contradiction as ContradictionRow
from ctxbase.db.schema import Conversation as ConversationRow
from ctxbase.db.schema import Message as MessageRow
from ctxbase.db.schema import QualityMetric as QualityMetricRow
from ctxbase.db.schema import RepetitionLoop as RepetitionLoopRow
from ctxbase.db.schema import new_id, table, utcnow
from ctxbase.errors import InvalidInputError, NotFoundError
from ctxbase.records import Citation, Contradiction, Page, QualityMetric, RepetitionLoop
from ctxbase.store.base import Domain, Keyset, as_uuid, uuid_part

conversations_table = table(ConversationRow)
messages_table = table(MessageRow)
ID = uuid.UUID | str
R = TypeVar("R", bound=BaseModel)


def _time_part(value: Any) -> datetime:
    """A timestamp written exactly as ``datetime.isoformat`` writes an aware one."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("not a timestamp")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or parsed.isoformat() != value:
        raise ValueError("not a canonical timestamp")
    return parsed


@dataclass(frozen=True)
class Kind(Generic[R]):
    """One kind of quality record: its table, record model and time column."""

    what: str
    table: Table
    record: type[R]
    time: str = "created_at"

    @property
    def pages(self) -> Keyset:
        return Keyset(self.table.name, (_time_part, uuid_part))

    def key(self, item: R) -> list[Any]:
        """The sort key of ``item`` as a cursor holds it."""
        return [getattr(item, self.time).isoformat(), getattr(item, "id")]  # noqa: B009


METRICS = Kind("metric", table(QualityMetricRow), QualityMetric, "measured_at")
CONTRADICTIONS = Kind("contradiction", table(ContradictionRow), Contradiction)
LOOPS = Kind("loop", table(RepetitionLoopRow), RepetitionLoop)
CITATIONS = Kind("citation", table(CitationRow), Citation)


class QualityRecords(Domain):
    """Base of ``store.quality``: what its methods share."""

    def _owner(self, connection: Connection, project: str, conversation_id: uuid.UUID) -> uuid.UUID:
        """The project id of conversation ``conversation_id`` in ``project`` of this
        scope; NotFoundError when there is none."""
        project_id = self._project_id(connection, project)
        found = connection.execute(
            select(conversations_table.c.id).where(
                conversations_table.c.id == conversation_id,
                conversations_table.c.project_id == project_id,
            )
        ).first()
        if found is None:
            raise NotFoundError(f"No conversation {conversation_id}")
        return project_id

    def _add(
        self,
        kind: Kind[R],
        conversation_id: ID,
        project: str,
        values: dict[str, Any],
        links: dict[str, list[uuid.UUID]],
    ) -> R:
        conversation_id = as_uuid(conversation_id, "conversation")
        now = utcnow()
        row = {**values, "id": new_id(), "conversation_id": conversation_id, "created_at": now}
        if "updated_at" in kind.table.c:
            row["updated_at"] = now
        with self._db.connect(write=True) as connection:
            row["project_id"] = self._owner(connection, project, conversation_id)
            positions = _positions(connection, conversation_id, links, row["project_id"])
            if kind is LOOPS:
                ordered = sorted(row["message_ids"], key=positions.__getitem__)
                row["first_position"], row["last_position"] = (
                    positions[ordered[0]],
                    positions[ordered[-1]],
                )
                row["message_ids"] = [str(m) for m in ordered]
            connection.execute(insert(kind.table), row)
        return kind.record.model_validate(row)

    def _list(
        self,
        kind: Kind[R],
        conversation_id: ID,
        project: str,
        query: Any,
        equal: dict[str, Any],
        cursor: Any,
    ) -> Page[R]:
        """``query`` holds the filters; ``cursor`` is decoded as given (any value not a
        cursor of this list is InvalidCursorError, as on every list)."""
        conversation_id = as_uuid(conversation_id, "conversation")
        within = (*self._list_of(project), conversation_id)
        last = kind.pages.decode(cursor, within) if cursor else None
        t = kind.table.c
        time = t[kind.time]
        conditions = [t[name] == value for name, value in equal.items() if value is not None]
        if query.since is not None:
            conditions.append(time >= query.since)
        if query.until is not None:
            conditions.append(time < query.until)
        if last is not None:
            conditions.append(or_(time > last[0], and_(time == last[0], t.id > last[1])))
        with self._db.connect() as connection:
            project_id = self._owner(connection, project, conversation_id)
            rows = connection.execute(
                select(kind.table)
                .where(
                    t.conversation_id == conversation_id, t.project_id == project_id, *conditions
                )
                .order_by(time, t.id)
                .limit(query.limit + 1)
            )
            items = [kind.record.model_validate(r._mapping) for r in rows]
        return kind.pages.page(items, query.limit, kind.key, within)

    def _update(
        self,
        kind: Kind[R],
        conversation_id: ID,
        record_id: ID,
        project: str,
        changes: dict[str, Any],
        stamp: Callable[[Mapping[str, Any]], dict[str, Any]],
    ) -> R:
        conversation_id = as_uuid(conversation_id, "conversation")
        record_id = as_uuid(record_id, kind.what)
        t = kind.table.c
        with self._db.connect(write=True) as connection:
            project_id = self._owner(connection, project, conversation_id)
            mine = and_(
                t.id == record_id, t.conversation_id == conversation_id, t.project_id == project_id
            )
            current = connection.execute(select(kind.table).where(mine).with_for_update()).first()
            if current is None:
                raise NotFoundError(f"No {kind.what} {record_id}")
            values = {**changes, **stamp(dict(current._mapping)), "updated_at": utcnow()}
            row = connection.execute(
                update(kind.table).where(mine).values(**values).returning(*kind.table.c)
            ).one()
        return kind.record.model_validate(row._mapping)

    def _delete(self, kind: Kind[Any], conversation_id: ID, record_id: ID, project: str) -> None:
        conversation_id = as_uuid(conversation_id, "conversation")
        record_id = as_uuid(record_id, kind.what)
        t = kind.table.c
        with self._db.connect(write=True) as connection:
            project_id = self._owner(connection, project, conversation_id)
            done = connection.execute(
                delete(kind.table).where(
                    t.id == record_id,
                    t.conversation_id == conversation_id,
                    t.project_id == project_id,
                )
            )
            if done.rowcount == 0:
                raise NotFoundError(f"No {kind.what} {record_id}")


def _positions(
    connection: Connection,
    conversation_id: uuid.UUID,
    links: dict[str, list[uuid.UUID]],
    project_id: uuid.UUID,
) -> dict[uuid.UUID, int]:
    """The position of each message the fields in ``links`` name; InvalidInputError
    naming the field when one is not a message of this conversation. Another
    conversation's or project's message reads exactly as one that does not exist."""
    wanted = {i for ids in links.values() for i in ids}
    if not wanted:
        return {}
    m = messages_table.c
    found = dict(
        connection.execute(
            select(m.id, m.position).where(
                m.id.in_(wanted), m.conversation_id == conversation_id, m.project_id == project_id
            )
        ).all()
    )
    for field, ids in links.items():
        if any(i not in found for i in ids):
            raise InvalidInputError(
                f"{field} names no message of this conversation",
                details=[{"location": [field], "message": "no such message", "type": "not_found"}],
            )
    return found
