"""What the delivery worker records: leases on subscriptions, cursors, failures, dead letters.

A worker owns a subscription while its lease runs; every write below is conditioned on
still owning it, so a worker that stalled past its lease (and was replaced) can no longer
move a cursor, and two workers never deliver for one subscription at once. A worker that
dies simply lets its lease run out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, and_, insert, or_, select, update

from ctxbase.db.database import Database
from ctxbase.db.schema import new_id, utcnow
from ctxbase.events.transports import PUSH_METHODS
from ctxbase.records import Subscription
from ctxbase.store.event_writer import events_table, streams_table
from ctxbase.store.subscriptions import dead_letters_table, sub, subscription_record
from ctxbase.store.subscriptions import subscriptions_table as subscriptions


class EventRef(Protocol):
    """What a dead letter names of an event: an :class:`~ctxbase.records.Event`, or the
    id and sequence of a stored row that cannot be read as one."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def sequence(self) -> int: ...


@dataclass(frozen=True)
class StoredEvent:
    id: uuid.UUID
    sequence: int


@dataclass(frozen=True)
class Claim:
    """A subscription this worker holds the lease of, and its stored (encrypted) secret."""

    subscription: Subscription
    secret_encrypted: bytes | None


class Ledger:
    def __init__(self, db: Database, owner: str, lease_seconds: float) -> None:
        self._db = db
        self.owner = owner
        self._lease = timedelta(seconds=lease_seconds)

    def claim_due(self, limit: int) -> list[Claim]:
        """Take the lease of up to ``limit`` push subscriptions with events owed and no
        other live owner, whose retry time has come."""
        now = utcnow()
        free = or_(sub.lease_expires_at.is_(None), sub.lease_expires_at < now)
        due = (
            select(sub.id)
            .join(streams_table, streams_table.c.project_id == sub.project_id)
            .where(
                sub.is_active.is_(True),
                sub.delivery.in_(PUSH_METHODS),
                sub.cursor < streams_table.c.last_sequence,
                or_(sub.next_attempt_at.is_(None), sub.next_attempt_at <= now),
                free,
            )
            .order_by(sub.next_attempt_at.is_not(None), sub.updated_at)
            .limit(limit)
        )
        with self._db.connect(write=True) as connection:
            ids = list(connection.execute(due).scalars())
            if not ids:
                return []
            # `free` again: on PostgreSQL a competing worker may have claimed a row since
            # the SELECT; the UPDATE re-checks it under the row lock, so one of them wins.
            rows = connection.execute(
                update(subscriptions)
                .where(sub.id.in_(ids), free)
                .values(lease_owner=self.owner, lease_expires_at=now + self._lease)
                .returning(*subscriptions.c)
            ).all()
        return [Claim(subscription_record(r._mapping), r.secret_encrypted) for r in rows]

    def advance(self, subscription_id: uuid.UUID, cursor: int) -> bool:
        """Everything up to ``cursor`` is delivered (or not wanted); renews the lease.
        False when the lease was lost: stop delivering for this subscription."""
        now = utcnow()
        with self._db.connect(write=True) as connection:
            done = connection.execute(
                update(subscriptions)
                .where(self._owned(subscription_id, now), sub.cursor <= cursor)
                .values(
                    cursor=cursor,
                    attempts=0,
                    next_attempt_at=None,
                    last_error=None,
                    lease_expires_at=now + self._lease,
                    updated_at=now,
                )
            )
        return done.rowcount == 1

    def failed(
        self,
        subscription_id: uuid.UUID,
        attempts: int,
        cursor: int,
        event: EventRef,
        error: str,
        *,
        max_attempts: int,
        retry_at: datetime,
    ) -> bool:
        """A delivery of ``event`` failed, the ``attempts``-th time. Returns True when it
        went to the dead letters (the cursor then moves past it), False when it will be
        retried at ``retry_at``."""
        if attempts >= max_attempts:
            self.dead_letter(subscription_id, event, attempts, error)
            return True
        self.postpone(subscription_id, attempts, cursor, error, retry_at=retry_at)
        return False

    def dead_letter(
        self, subscription_id: uuid.UUID, event: EventRef, attempts: int, error: str
    ) -> None:
        """Give up on ``event`` after ``attempts`` attempts: record it among the dead
        letters and move the cursor past it."""
        now = utcnow()
        error = error[:2000]
        with self._db.connect(write=True) as connection:
            claimed = connection.execute(
                update(subscriptions)
                .where(self._owned(subscription_id, now), sub.cursor < event.sequence)
                .values(
                    cursor=event.sequence,
                    attempts=0,
                    next_attempt_at=None,
                    last_error=error,
                    lease_expires_at=now + self._lease,
                    updated_at=now,
                )
            )
            if claimed.rowcount == 1:
                connection.execute(
                    insert(dead_letters_table).values(
                        id=new_id(),
                        subscription_id=subscription_id,
                        event_id=event.id,
                        sequence=event.sequence,
                        attempts=attempts,
                        last_error=error,
                        created_at=now,
                    )
                )

    def postpone(
        self,
        subscription_id: uuid.UUID,
        attempts: int,
        cursor: int | None,
        error: str,
        *,
        retry_at: datetime,
    ) -> None:
        """Try this subscription again at ``retry_at``, from ``cursor`` (None: from where
        its cursor stands)."""
        now = utcnow()
        values = {
            "attempts": attempts,
            "next_attempt_at": retry_at,
            "last_error": error[:2000],
            "updated_at": now,
        }
        if cursor is not None:
            values["cursor"] = cursor
        with self._db.connect(write=True) as connection:
            connection.execute(
                update(subscriptions).where(self._owned(subscription_id, now)).values(values)
            )

    def next_stored_event(self, project_id: uuid.UUID, after: int) -> StoredEvent | None:
        """The id and sequence of the project's first event after ``after``, without
        reading the rest of its row (which may be what cannot be read)."""
        with self._db.read() as connection:
            found = connection.execute(
                select(events_table.c.id, events_table.c.sequence)
                .where(
                    events_table.c.project_id == project_id,
                    events_table.c.sequence > after,
                )
                .order_by(events_table.c.sequence)
                .limit(1)
            ).first()
        return None if found is None else StoredEvent(found.id, found.sequence)

    def release(self, subscription_id: uuid.UUID) -> None:
        with self._db.connect(write=True) as connection:
            connection.execute(
                update(subscriptions)
                .where(sub.id == subscription_id, sub.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    def _owned(self, subscription_id: uuid.UUID, now: datetime) -> ColumnElement[bool]:
        return and_(
            sub.id == subscription_id,
            sub.lease_owner == self.owner,
            sub.lease_expires_at >= now,
        )
