"""Subscriptions: an agent's standing request for a project's events.

Each keeps a cursor, the last sequence delivered or acknowledged; everything after it is
still owed, so delivery is at-least-once and in order whatever crashes in between. Push
deliveries (webhook, redis) are made by the delivery worker; ``poll`` subscribers read
``pending`` and ``ack``; ``sse`` subscribers hold a stream open.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from ctxbase.db.schema import DeadLetter as DeadLetterRow
from ctxbase.db.schema import Subscription as SubscriptionRow
from ctxbase.db.schema import new_id, table, utcnow
from ctxbase.errors import InvalidInputError, NotFoundError
from ctxbase.events.matching import Matcher
from ctxbase.events.redelivery import redeliver
from ctxbase.events.transports import PUSH_METHODS
from ctxbase.records import (
    DeadLetter,
    DeadLetterRetry,
    DeadLettersRetried,
    DeliveryMethod,
    Event,
    Page,
    PendingEvents,
    Subscription,
    SubscriptionIn,
)
from ctxbase.records.events import RETRY_LIMIT
from ctxbase.store.base import (
    DEFAULT_PAGE,
    DEFAULT_PROJECT,
    INT64_MAX,
    Domain,
    Keyset,
    as_uuid,
    count_part,
    given,
    page_limit,
    parse,
    sequence_number,
    uuid_part,
)
from ctxbase.store.events import streams_table

subscriptions_table = table(SubscriptionRow)
dead_letters_table = table(DeadLetterRow)
sub = subscriptions_table.c
_pages = Keyset("subscriptions", (uuid_part,))
_dead_letter_pages = Keyset("dead letters", (count_part(INT64_MAX),))  # by sequence
_SCAN_BATCH = 500


def is_new(subscription: Subscription) -> bool:
    """Whether ``create`` just made ``subscription`` rather than replaced one: a new one was
    never updated (a replaced one's ``updated_at`` is the replacement's time)."""
    return subscription.updated_at == subscription.created_at


def subscription_record(row: Any) -> Subscription:
    values = dict(row)
    values["has_secret"] = values.get("secret_encrypted") is not None
    return Subscription.model_validate(values)


class Subscriptions(Domain):
    """``store.subscriptions``."""

    def create(
        self,
        *,
        agent_id: str,
        name: str = "",
        needs: list[str] | None = None,
        event_types: list[str] | None = None,
        threshold: float | None = None,
        delivery: DeliveryMethod = "poll",
        target: str | None = None,
        secret: str | None = None,
        start_after: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Subscription:
        """Subscribe an agent (see :class:`SubscriptionIn` for the fields).

        An agent has one subscription per ``name`` in a project: registering it again
        replaces that subscription in place, atomically (one upsert on both backends, so
        concurrent registrations make one subscription, never two nor an error). The
        replaced subscription keeps its id, its dead letters and its cursor (the events it
        is still owed stay owed, now matched by the new filter) unless ``start_after``
        moves the cursor; its delivery failures are forgotten. ``is_new`` tells a new
        subscription from a replaced one."""
        data = parse(SubscriptionIn, given(SubscriptionIn, locals()))
        sealed = self._store.secrets.encrypt(data.secret) if data.secret else None
        now = utcnow()
        fields = {
            "needs": data.needs,
            "event_types": data.event_types,
            "threshold": data.threshold,
            "delivery": data.delivery,
            "target": data.target,
            "secret_encrypted": sealed,
            "is_active": True,
            "attempts": 0,
            "next_attempt_at": None,
            "last_error": None,
            "updated_at": now,
        }
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            last = _last_sequence(connection, project_id)
            start = last if data.start_after is None else data.start_after
            if start > last:
                raise InvalidInputError(
                    f"start_after {start} is beyond the stream's last sequence {last}"
                )
            replacing = fields if data.start_after is None else {**fields, "cursor": start}
            statement = (
                self._db.backend.insert(subscriptions_table)
                .values(
                    id=new_id(),
                    project_id=project_id,
                    agent_id=data.agent_id,
                    name=data.name,
                    cursor=start,
                    created_at=now,
                    **fields,
                )
                .on_conflict_do_update(
                    index_elements=[sub.project_id, sub.agent_id, sub.name], set_=replacing
                )
                .returning(*subscriptions_table.c)
            )
            row = connection.execute(statement).one()
        return subscription_record(row._mapping)

    def get(
        self, subscription_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> Subscription:
        with self._db.connect() as connection:
            return subscription_record(self._row(connection, subscription_id, project))

    def list(
        self,
        *,
        agent_id: str | None = None,
        project: str = DEFAULT_PROJECT,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[Subscription]:
        page_limit(limit)
        within = self._list_of(project)
        last_id = _pages.decode(cursor, within)[0] if cursor else None
        with self._db.connect() as connection:
            query = select(subscriptions_table).where(
                sub.project_id == self._project_id(connection, project)
            )
            if agent_id is not None:
                query = query.where(sub.agent_id == agent_id)
            if last_id is not None:
                query = query.where(sub.id > last_id)
            rows = connection.execute(query.order_by(sub.id).limit(limit + 1))
            items = [subscription_record(r._mapping) for r in rows]
        return _pages.page(items, limit, lambda item: [item.id], within)

    def delete(self, subscription_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> None:
        with self._db.connect(write=True) as connection:
            row = self._row(connection, subscription_id, project)
            connection.execute(delete(subscriptions_table).where(sub.id == row["id"]))

    def pending(
        self,
        subscription_id: uuid.UUID | str,
        *,
        limit: int = DEFAULT_PAGE,
        after: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> PendingEvents:
        """Matching events after the cursor (or after ``after``), oldest first; the cursor
        moves only with ``ack``."""
        page_limit(limit)
        if after is not None:
            sequence_number("after", after)
        with self._db.connect() as connection:
            subscription = subscription_record(self._row(connection, subscription_id, project))
            last = _last_sequence(connection, subscription.project_id)
        events = self._store.events
        matcher = Matcher(self._store)
        items: list[Event] = []
        scanned = subscription.cursor if after is None else after
        while len(items) < limit and scanned < last:
            batch = events.between(subscription.project_id, scanned, _SCAN_BATCH)
            if not batch:
                break
            for event, wanted in zip(batch, matcher.select(subscription, batch), strict=True):
                if wanted:
                    items.append(event)
                scanned = event.sequence
                if len(items) == limit:
                    break
        return PendingEvents(
            items=items, cursor=subscription.cursor, scanned_to=scanned, last_sequence=last
        )

    def ack(
        self, subscription_id: uuid.UUID | str, sequence: int, *, project: str = DEFAULT_PROJECT
    ) -> Subscription:
        """Mark everything up to ``sequence`` handled (a lower one than the cursor is a no-op)."""
        sequence_number("sequence", sequence)
        with self._db.connect(write=True) as connection:
            row = self._row(connection, subscription_id, project)
            last = _last_sequence(connection, row["project_id"])
            if sequence > last:
                raise InvalidInputError(
                    f"sequence {sequence} is beyond the stream's last sequence {last}"
                )
            if sequence > row["cursor"]:
                row = self._advance(connection, row["id"], sequence)
        return subscription_record(row)

    def dead_letters(
        self,
        subscription_id: uuid.UUID | str,
        *,
        project: str = DEFAULT_PROJECT,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[DeadLetter]:
        """Events given up on after the last delivery attempt, oldest first."""
        page_limit(limit)
        dl = dead_letters_table.c
        within = (*self._list_of(project), as_uuid(subscription_id, "subscription"))
        after = _dead_letter_pages.decode(cursor, within)[0] if cursor else None
        with self._db.connect() as connection:
            row = self._row(connection, subscription_id, project)
            query = select(dead_letters_table).where(dl.subscription_id == row["id"])
            if after is not None:
                query = query.where(dl.sequence > after)
            rows = connection.execute(query.order_by(dl.sequence).limit(limit + 1))
            items = [DeadLetter.model_validate(r._mapping) for r in rows]
        return _dead_letter_pages.page(items, limit, lambda item: [item.sequence], within)

    def retry_dead_letters(
        self,
        subscription_id: uuid.UUID | str,
        *,
        ids: Sequence[uuid.UUID | str] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> DeadLettersRetried:
        """Send dead-lettered events once more, now, as the delivery worker would: those
        named by ``ids`` (each this subscription's, or NotFoundError naming them), else the
        oldest ``RETRY_LIMIT``. A delivered one leaves the dead letters; a failed one stays,
        one more attempt counted and its last error replaced; after ``RETRY_SECONDS`` the
        rest are left as they are (in neither list). The cursor does not move. Only push
        subscriptions (webhook, redis) are retried. See :mod:`ctxbase.events.redelivery`."""
        request = parse(DeadLetterRetry, given(DeadLetterRetry, locals()))
        with self._db.connect() as connection:
            row = self._row(connection, subscription_id, project)
            letters = _letters_to_retry(connection, row["id"], request.ids)
        subscription = subscription_record(row)
        if subscription.delivery not in PUSH_METHODS:
            raise InvalidInputError(
                f"This subscription delivers by {subscription.delivery}: only webhook and "
                "redis deliveries are retried"
            )
        delivered, failed = redeliver(self._store, subscription, row["secret_encrypted"], letters)
        with self._db.connect() as connection:
            remaining = connection.execute(
                select(func.count())
                .select_from(dead_letters_table)
                .where(dead_letters_table.c.subscription_id == subscription.id)
            ).scalar_one()
        return DeadLettersRetried(delivered=delivered, failed=failed, remaining=remaining)

    # --- helpers ---

    def _row(self, connection: Connection, subscription_id: uuid.UUID | str, project: str) -> Any:
        found = connection.execute(
            select(subscriptions_table).where(
                sub.id == as_uuid(subscription_id, "subscription"),
                sub.project_id == self._project_id(connection, project),
            )
        ).first()
        if found is None:
            raise NotFoundError(f"No subscription {subscription_id}")
        return found._mapping

    def _advance(self, connection: Connection, subscription_id: uuid.UUID, sequence: int) -> Any:
        return (
            connection.execute(
                update(subscriptions_table)
                .where(sub.id == subscription_id)
                .values(
                    cursor=sequence,
                    attempts=0,
                    next_attempt_at=None,
                    last_error=None,
                    updated_at=utcnow(),
                )
                .returning(*subscriptions_table.c)
            )
            .one()
            ._mapping
        )


def _letters_to_retry(
    connection: Connection, subscription_id: uuid.UUID, ids: list[uuid.UUID] | None
) -> list[DeadLetter]:
    """The subscription's dead letters named by ``ids`` (all of them, or NotFoundError
    naming those it does not hold), else its oldest ``RETRY_LIMIT``; by sequence."""
    dl = dead_letters_table.c
    query = select(dead_letters_table).where(dl.subscription_id == subscription_id)
    query = query.limit(RETRY_LIMIT) if ids is None else query.where(dl.id.in_(set(ids)))
    rows = connection.execute(query.order_by(dl.sequence))
    letters = [DeadLetter.model_validate(r._mapping) for r in rows]
    missing = sorted({str(i) for i in ids or ()} - {str(letter.id) for letter in letters})
    if missing:
        raise NotFoundError(
            f"No dead letter {', '.join(missing)} of subscription {subscription_id}",
            details={"ids": missing},
        )
    return letters


def _last_sequence(connection: Connection, project_id: uuid.UUID) -> int:
    last = connection.execute(
        select(streams_table.c.last_sequence).where(streams_table.c.project_id == project_id)
    ).scalar()
    return int(last or 0)
