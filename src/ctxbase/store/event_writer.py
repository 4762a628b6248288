"""Group commit of event appends: concurrent appends of one process share a transaction.

Sequences are handed out under the project's counter-row lock, held until the commit has
been flushed to disk, so one stream takes one commit at a time. Rather than queueing
behind each other's flushes, appends made at the same moment by several threads are
written together: each caller enqueues its request; one caller at a time leads, writing
every request queued so far in one transaction, in queue order, handing each its own
result, and then passing the lead to the oldest caller still waiting. A caller still
sees its own append as one all-or-none unit: requests that cannot be honoured (an
``expected_sequence`` that no longer holds, a project that is not there) fail alone and
take no number, and a failed transaction fails every request in it, having written none
of them.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    String,
    Uuid,
    bindparam,
    column,
    insert,
    select,
    text,
    true,
    update,
)

from ctxbase.db.schema import Event as EventRow
from ctxbase.db.schema import EventStream, new_id, table, utcnow
from ctxbase.errors import ConflictError, CtxbaseError, NotFoundError
from ctxbase.events.notifier import CHANNEL, EventNotifier
from ctxbase.records import Event, EventIn
from ctxbase.store.base import projects_table, tenants_table

if TYPE_CHECKING:
    from ctxbase.db.database import Database

events_table = table(EventRow)
streams_table = table(EventStream)
#: Most events written in one transaction; the rest wait for the next one.
GROUP_LIMIT = 2000


@dataclass(eq=False)
class AppendRequest:
    tenant: str
    project: str
    items: list[EventIn]
    expected_sequence: int | None = None
    result: list[Event] | None = None
    error: BaseException | None = None
    done: bool = False
    wake: threading.Event = field(default_factory=threading.Event)


def _select_project() -> Any:
    return (
        select(projects_table.c.id, projects_table.c.tenant_id)
        .join(tenants_table, tenants_table.c.id == projects_table.c.tenant_id)
        .where(
            tenants_table.c.slug == bindparam("tenant"),
            tenants_table.c.is_active.is_(true()),
            projects_table.c.slug == bindparam("project"),
        )
    )


def _bump_stream(db: Database) -> Any:
    """Add ``:count`` to the project's last sequence (creating its row)."""
    statement = db.backend.insert(streams_table).values(
        project_id=bindparam("project_id"), last_sequence=bindparam("count")
    )
    return statement.on_conflict_do_update(
        index_elements=["project_id"],
        set_={"last_sequence": streams_table.c.last_sequence + statement.excluded.last_sequence},
    ).returning(streams_table.c.last_sequence)


def _set_stream() -> Any:
    return (
        update(streams_table)
        .where(streams_table.c.project_id == bindparam("project_id"))
        .values(last_sequence=bindparam("last"))
    )


def _open_stream_at_once() -> Any:
    """In one round trip: find the project, bump its counter (locking the row) and queue
    the notice that goes out when the transaction commits (PostgreSQL's SQL)."""
    return text(
        f"""
        WITH project AS (
            SELECT projects.id, projects.tenant_id FROM projects
            JOIN tenants ON tenants.id = projects.tenant_id
            WHERE tenants.slug = :tenant AND tenants.is_active AND projects.slug = :project
        ), bumped AS (
            INSERT INTO event_streams (project_id, last_sequence)
            SELECT id, :count FROM project
            ON CONFLICT (project_id)
            DO UPDATE SET last_sequence = event_streams.last_sequence + excluded.last_sequence
            RETURNING project_id, last_sequence
        )
        SELECT project.id, project.tenant_id, bumped.last_sequence,
               pg_notify('{CHANNEL}', project.id::text) AS notified
        FROM project JOIN bumped ON bumped.project_id = project.id
        """
    ).columns(
        column("id", Uuid()),
        column("tenant_id", Uuid()),
        column("last_sequence", BigInteger()),
        column("notified", String()),
    )


class EventWriter:
    """One per Store: the group-commit queue in front of the events table."""

    def __init__(self, db: Database, notifier: EventNotifier) -> None:
        self._db = db
        self._notifier = notifier
        self._queue: list[AppendRequest] = []
        self._lock = threading.Lock()
        self._writing = False  # whether some caller is leading (writing groups) now

    def append(self, request: AppendRequest) -> list[Event]:
        with self._lock:
            self._queue.append(request)
            leading = not self._writing
            self._writing = True
        if not leading:
            # Woken when a leader has written our request, or has handed over to us.
            request.wake.wait()
        if not request.done:
            self._lead()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _lead(self) -> None:
        """Write one group (the oldest requests, ours among them), then hand over to the
        oldest caller still waiting, if any. Callers whose requests are done are released
        at once, so they append again while the next group forms: groups grow with the
        number of writers instead of alternating between one and the rest."""
        with self._lock:
            group = self._take_group()
        try:
            self._write(group)
        finally:
            for request in group:
                request.done = True
                request.wake.set()
            with self._lock:
                if self._queue:
                    self._queue[0].wake.set()  # not done: it leads the next group
                else:
                    self._writing = False

    def _take_group(self) -> list[AppendRequest]:
        group: list[AppendRequest] = []
        size = 0
        while self._queue and (not group or size + len(self._queue[0].items) <= GROUP_LIMIT):
            request = self._queue.pop(0)
            group.append(request)
            size += len(request.items)
        return group

    def _write(self, group: list[AppendRequest]) -> None:
        try:
            written = self._write_group(group)
        except BaseException as error:  # nothing of the group was written
            for request in group:
                if request.error is None:
                    request.error = _for_caller(error)
            written = []
        for project_id in written:
            self._notifier.notify(project_id)

    def _write_group(self, group: list[AppendRequest]) -> list[uuid.UUID]:
        db = self._db
        add = db.prepared("events.insert", lambda: insert(events_table))
        now = utcnow()
        by_project: dict[tuple[str, str], list[AppendRequest]] = {}
        for request in group:
            by_project.setdefault((request.tenant, request.project), []).append(request)
        written: list[uuid.UUID] = []
        rows: list[dict[str, Any]] = []
        with db.raw(write=True) as cursor:
            for (tenant, project), requests in by_project.items():
                count = sum(len(r.items) for r in requests)
                stream = self._open_stream(cursor, tenant, project, count)
                if stream is None:
                    for request in requests:
                        request.error = NotFoundError(f"No project {project!r}")
                    continue
                last = stream["last_sequence"]
                current = last - count
                for request in requests:
                    if request.expected_sequence not in (None, current):
                        request.error = ConflictError(
                            f"The stream is at sequence {current}, not {request.expected_sequence}",
                            details={
                                "expected_sequence": request.expected_sequence,
                                "last_sequence": current,
                            },
                        )
                        continue
                    first = current + 1
                    current += len(request.items)
                    request.result = self._rows(stream, request.items, first, now, rows)
                if current != last:  # refused requests give their numbers back
                    db.prepared("events.set", _set_stream).rows(
                        cursor, {"project_id": stream["id"], "last": current}
                    )
                written.append(stream["id"])
            if rows:
                add.many(cursor, rows)
        return written

    def _open_stream(self, cursor: Any, tenant: str, project: str, count: int) -> Any:
        """The project's id and tenant and its counter bumped by ``count``, or None."""
        db = self._db
        if db.backend.supports_returning_in_cte and db.backend.supports_listen_notify:
            opened = db.prepared("events.open", _open_stream_at_once)
            return opened.first(cursor, {"tenant": tenant, "project": project, "count": count})
        found = db.prepared("events.project", _select_project).first(
            cursor, {"tenant": tenant, "project": project}
        )
        if found is None:
            return None
        bumped = db.prepared("events.bump", lambda: _bump_stream(db)).first(
            cursor, {"project_id": found["id"], "count": count}
        )
        assert bumped is not None  # an upsert always returns its row
        return {**found, "last_sequence": bumped["last_sequence"]}

    @staticmethod
    def _rows(
        stream: Any, items: list[EventIn], first: int, now: Any, rows: list[dict[str, Any]]
    ) -> list[Event]:
        """Rows to insert for ``items`` (added to ``rows``) and the caller's records."""
        events = []
        for sequence, item in enumerate(items, start=first):
            row = {
                "id": new_id(),
                "project_id": stream["id"],
                "tenant_id": stream["tenant_id"],
                "sequence": sequence,
                "event_type": item.event_type,
                "data": item.data,
                "metadata": item.metadata,
                "created_at": now,
            }
            rows.append(row)
            # Built from validated input: no need to validate again.
            events.append(Event.model_construct(**row))
        return events


def _for_caller(error: BaseException) -> BaseException:
    """The error one caller of a failed group raises: its own copy, so that callers in
    several threads never share (and interleave) one traceback."""
    if isinstance(error, CtxbaseError):
        copy = type(error)(error.message, details=error.details, hint=error.hint)
        copy.__cause__ = error.__cause__
        return copy
    return error
