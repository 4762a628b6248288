"""Event streams: append-only, one per project, numbered 1, 2, 3, … without gaps.

An append bumps the project's counter row in ``event_streams`` and inserts the events in
the same transaction. The counter row stays locked until the transaction commits
(PostgreSQL row lock; SQLite's single writer), so sequences are handed out in commit
order: a reader that has seen sequence N can never later find an unseen number below N,
and a rolled-back append gives its numbers back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import select

from ctxbase.errors import NotFoundError
from ctxbase.records import Event, EventIn, EventPage
from ctxbase.store.base import (
    DEFAULT_PAGE,
    DEFAULT_PROJECT,
    Domain,
    page_limit,
    parse,
    project_id_subquery,
    sequence_number,
)
from ctxbase.store.event_writer import AppendRequest, events_table, streams_table

ev = events_table.c


def _last_sequence() -> Any:
    return select(streams_table.c.last_sequence).where(
        streams_table.c.project_id == project_id_subquery()
    )


class Events(Domain):
    """``store.events``: append to and read a project's event stream."""

    def append(
        self,
        event_type: str,
        data: Any = None,
        *,
        metadata: dict[str, Any] | None = None,
        expected_sequence: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Event:
        """Append one event; with ``expected_sequence``, only if the stream's last sequence
        is still that (ConflictError, HTTP 409, otherwise)."""
        fields: dict[str, Any] = {"event_type": event_type, "metadata": metadata or {}}
        if data is not None:
            fields["data"] = data
        return self.append_many([fields], expected_sequence=expected_sequence, project=project)[0]

    def append_many(
        self,
        events: Iterable[EventIn | dict[str, Any]],
        *,
        expected_sequence: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> list[Event]:
        """Append events in order, all or none, at consecutive sequences."""
        items = [parse(EventIn, item) for item in events]
        self._check_batch(len(items))
        for item in items:
            self._check_json("data", item.data)
            self._check_json("metadata", item.metadata)
        if expected_sequence is not None:
            sequence_number("expected_sequence", expected_sequence)
        scope = self._store.scope
        if scope.projects is not None and project not in scope.projects:
            raise NotFoundError(f"No project {project!r}")
        request = AppendRequest(scope.tenant, project, items, expected_sequence)
        return self._store.event_writer.append(request)

    def list(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE,
        project: str = DEFAULT_PROJECT,
    ) -> EventPage:
        """Events with a sequence above ``after``, in sequence order."""
        page_limit(limit)
        after = sequence_number("after", after)
        params = self._scope_params(project)
        head = self._db.prepared("events.last", _last_sequence)
        with self._db.raw() as cursor:
            last = head.first(cursor, params)
        with self._db.read() as connection:
            rows = [
                r._mapping
                for r in connection.execute(
                    select(events_table)
                    .where(ev.project_id == project_id_subquery(), ev.sequence > after)
                    .order_by(ev.sequence)
                    .limit(limit + 1),
                    params,
                )
            ]
        if last is None:
            self._ensure_project(project)
        items = [Event.model_validate(row) for row in rows[:limit]]
        # An append may commit between the two reads: the head is never below the events.
        last_sequence = max([last["last_sequence"] if last else 0, *(e.sequence for e in items)])
        return EventPage(
            items=items,
            last_sequence=last_sequence,
            next_after=items[-1].sequence if len(rows) > limit else None,
        )

    def stream(self, *, after: int = 0, project: str = DEFAULT_PROJECT) -> Iterator[Event]:
        """Events after ``after``, then each new one as it commits, for as long as the
        caller iterates (stop by breaking out of the loop)."""
        after = sequence_number("after", after)
        self.last_sequence(project=project)  # NotFoundError now, not at the first event
        notifier = self._store.notifier
        while True:
            seen = notifier.generation
            page = self.list(after=after, limit=500, project=project)
            yield from page.items
            if page.items:
                after = page.items[-1].sequence
            if page.next_after is None:
                notifier.wait(since=seen)

    def last_sequence(self, *, project: str = DEFAULT_PROJECT) -> int:
        """The sequence of the project's newest event (0 before the first)."""
        head = self._db.prepared("events.last", _last_sequence)
        with self._db.raw() as cursor:
            last = head.first(cursor, self._scope_params(project))
        if last is None:
            self._ensure_project(project)
            return 0
        return int(last["last_sequence"])

    def between(self, project_id: uuid.UUID, after: int, limit: int) -> Sequence[Event]:
        """Up to ``limit`` events after ``after`` of a project known by id (for delivery)."""
        with self._db.read() as connection:
            rows = connection.execute(
                select(events_table)
                .where(ev.project_id == project_id, ev.sequence > after)
                .order_by(ev.sequence)
                .limit(limit)
            )
            return [Event.model_validate(row._mapping) for row in rows]

    def _ensure_project(self, project: str) -> None:
        with self._db.connect() as connection:
            self._project_id(connection, project)
