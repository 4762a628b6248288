"""Dead letters sent once more, now: what ``subscriptions.retry_dead_letters`` does.

The delivery worker (:mod:`ctxbase.events.worker`) gave up on these events and moved the
subscription's cursor past them. A retry sends each one again, one attempt each, through
the transport, payload and signature the worker uses. It runs beside delivery, not in
its order: the cursor stays where it is and the subscription's lease is not taken.

A delivered event leaves the dead letters; one that fails again stays, one more attempt
counted and its last error replaced, as does one that cannot be read or rendered (saying
why). Each outcome is written as soon as it is known, so a retry cut short keeps what it
did. Two retries of one dead letter at once may both send it: delivery stays at least once.

The caller waits for the sends, so a retry starts none after :data:`RETRY_SECONDS`: the
letters left are untouched, neither delivered nor failed (a receiver that hangs until the
webhook timeout would otherwise hold a request for up to 100 timeouts).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import delete, update

from ctxbase.db.schema import DeadLetter as DeadLetterRow
from ctxbase.db.schema import table
from ctxbase.errors import CtxbaseError
from ctxbase.events.transports import (
    DeliveryFailed,
    Transport,
    describe,
    failure_reason,
    open_transport,
    payload,
    signing_secret,
)
from ctxbase.records import DeadLetter, RetryFailure, Subscription

if TYPE_CHECKING:
    from ctxbase.store.store import Store

log = logging.getLogger("ctxbase.delivery")
#: A retry starts no send after this many seconds (those left stay as they were).
RETRY_SECONDS = 60.0
dead_letters = table(DeadLetterRow)
dl = dead_letters.c


def redeliver(
    store: Store,
    subscription: Subscription,
    sealed_secret: bytes | None,
    letters: Sequence[DeadLetter],
) -> tuple[list[uuid.UUID], list[RetryFailure]]:
    """Send each of ``letters`` (dead letters of the push ``subscription``) once more,
    in turn, until :data:`RETRY_SECONDS` have passed; the ids delivered, and those that
    failed with why."""
    deadline = time.monotonic() + RETRY_SECONDS
    delivered: list[uuid.UUID] = []
    failed: list[RetryFailure] = []
    try:
        secret = signing_secret(store.secrets, sealed_secret)
        unsigned = None
    except CtxbaseError as error:  # nothing can be signed: every letter stays, saying why
        secret, unsigned = None, describe(error)
    transport = open_transport(subscription.delivery, store.settings)
    try:
        for letter in letters:
            if time.monotonic() > deadline:
                break
            problem = unsigned or _send_again(store, transport, subscription, letter, secret)
            if problem is None:
                _forget(store, letter)
                delivered.append(letter.id)
            else:
                _count_failure(store, letter, problem)
                failed.append(RetryFailure(id=letter.id, error=problem))
    finally:
        transport.close()
    return delivered, failed


def _send_again(
    store: Store,
    transport: Transport,
    subscription: Subscription,
    letter: DeadLetter,
    secret: str | None,
) -> str | None:
    """None once the receiver took the letter's event; otherwise why not."""
    try:
        found = store.events.between(subscription.project_id, letter.sequence - 1, 1)
    except CtxbaseError:
        raise  # the database's own failure: the retry stops, the rest stay as they were
    except Exception as error:  # a stored row that cannot be read as an event
        return describe(error)
    if not found or found[0].id != letter.event_id:
        return f"event {letter.sequence} is no longer in the stream"
    event = found[0]
    try:
        body = payload(subscription, event)
    except Exception as error:  # the stored event cannot be rendered
        return describe(error)
    try:
        transport.send(subscription, event, body, secret)
    except Exception as error:
        if not isinstance(error, DeliveryFailed):
            log.exception("Sending dead-lettered event %d again failed", event.sequence)
        return failure_reason(error)
    return None


def _forget(store: Store, letter: DeadLetter) -> None:
    with store.db.connect(write=True) as connection:
        connection.execute(delete(dead_letters).where(dl.id == letter.id))


def _count_failure(store: Store, letter: DeadLetter, error: str) -> None:
    with store.db.connect(write=True) as connection:
        connection.execute(
            update(dead_letters)
            .where(dl.id == letter.id)
            .values(attempts=dl.attempts + 1, last_error=error[:2000])
        )
