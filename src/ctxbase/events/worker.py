"""The delivery worker: pushes each subscription's owed events, in order, at least once.

Runs inside the server (a thread) or alone (``ctxbase worker``); any number of workers may
share one database. A pass claims due subscriptions (see :mod:`ctxbase.events.ledger`),
delivers their events after the cursor one by one, and moves the cursor after each
success, so a worker killed at any point leaves at most the event in flight to be
delivered again. A failure schedules a retry with exponential backoff; the last allowed
failure sends the event to the dead letters and delivery goes on with the next one.

One bad item never stops the worker. A stored event that cannot be read or rendered
(a row an older version let in) can never be delivered, so it goes to the dead letters at
once, its attempt counted; an unexpected error while sending counts as a failed attempt
like a receiver's refusal; an error with one subscription postpones that subscription
only. Every one is logged, and the other subscriptions and projects go on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from ctxbase.db.schema import utcnow
from ctxbase.errors import CtxbaseError, DatabaseError
from ctxbase.events.ledger import Claim, EventRef, Ledger
from ctxbase.events.matching import Matcher
from ctxbase.events.transports import (
    PUSH_METHODS,
    DeliveryFailed,
    Transport,
    describe,
    failure_reason,
    open_transport,
    payload,
    signing_secret,
)
from ctxbase.records import Event, Subscription

if TYPE_CHECKING:
    from ctxbase.store.store import Store

log = logging.getLogger("ctxbase.delivery")
_CLAIM_BATCH = 16
_EVENT_BATCH = 200


class DeliveryWorker:
    def __init__(self, store: Store, *, name: str | None = None) -> None:
        self._store = store
        self._settings = store.settings
        owner = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._ledger = Ledger(store.db, owner[:100], self._settings.delivery_lease_seconds)
        self._matcher = Matcher(store)
        self._transports: dict[str, Transport] = {
            method: open_transport(method, self._settings) for method in PUSH_METHODS
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def owner(self) -> str:
        return self._ledger.owner

    # --- running ---

    def run_once(self) -> int:
        """One pass over the due subscriptions; the number of events delivered."""
        delivered = 0
        for claim in self._ledger.claim_due(_CLAIM_BATCH):
            subscription = claim.subscription
            try:
                delivered += self._deliver(claim)
            except DatabaseError as error:  # the database went away: the lease runs out
                log.warning("Delivery for subscription %s stopped: %s", subscription.id, error)
            except Exception as error:  # e.g. a secret that cannot be decrypted
                log.exception("Delivery for subscription %s failed", subscription.id)
                self._postpone(subscription, f"{type(error).__name__}: {error}")
            finally:
                with contextlib.suppress(CtxbaseError):
                    self._ledger.release(subscription.id)
        return delivered

    def run(self) -> None:
        """Deliver until :meth:`stop`; between idle passes, wait for new events."""
        while not self._stop.is_set():
            try:
                seen = self._store.notifier.generation
                if self.run_once() == 0:
                    self._store.notifier.wait(since=seen)
            except CtxbaseError as error:
                log.warning("Delivery pass failed, retrying: %s", error)
                self._stop.wait(self._store.notifier.poll_interval)
            except Exception:  # a bug must not end deliveries for every project
                log.exception("Delivery pass failed, retrying")
                self._stop.wait(self._store.notifier.poll_interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="ctxbase-delivery", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask :meth:`run` to return after the delivery in flight (safe in a signal handler)."""
        self._stop.set()
        self._store.notifier.notify()

    def stop(self) -> None:
        """Stop the worker thread and release its connections."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for transport in self._transports.values():
            transport.close()

    # --- one subscription ---

    def _deliver(self, claim: Claim) -> int:
        subscription = claim.subscription
        transport = self._transports[subscription.delivery]
        secret = signing_secret(self._store.secrets, claim.secret_encrypted)
        cursor, attempts, delivered = subscription.cursor, subscription.attempts, 0
        while not self._stop.is_set():
            events = self._read(subscription.project_id, cursor)
            if not events:
                break
            for event, wanted in zip(events, self._select(subscription, events), strict=True):
                if isinstance(wanted, Poison):
                    self._give_up(subscription, event, attempts + 1, wanted.reason)
                    cursor, attempts = event.sequence, 0
                    continue
                if not wanted:  # skipping costs nothing, so it goes on while stopping
                    cursor = event.sequence
                    continue
                if self._stop.is_set():
                    break  # what is left stays owed, for the next run or worker
                assert isinstance(event, Event)
                try:
                    body = payload(subscription, event)
                except Exception as error:  # the stored event cannot be rendered
                    self._give_up(subscription, event, attempts + 1, describe(error))
                    cursor, attempts = event.sequence, 0
                    continue
                try:
                    transport.send(subscription, event, body, secret)
                except Exception as error:
                    if not isinstance(error, DeliveryFailed):
                        log.exception("Sending event %d failed unexpectedly", event.sequence)
                    attempts += 1
                    dead = self._ledger.failed(
                        subscription.id,
                        attempts,
                        cursor,
                        event,
                        failure_reason(error),
                        max_attempts=self._settings.delivery_max_attempts,
                        retry_at=utcnow() + self._backoff(attempts),
                    )
                    if not dead:
                        return delivered  # retried later, in order: nothing after it now
                    log.warning(
                        "Event %d dead-lettered for subscription %s after %d attempts: %s",
                        event.sequence,
                        subscription.id,
                        attempts,
                        error,
                    )
                    cursor, attempts = event.sequence, 0
                    continue
                cursor, attempts, delivered = event.sequence, 0, delivered + 1
                if not self._ledger.advance(subscription.id, cursor):
                    return delivered  # the lease was lost: another worker carries on
        if cursor > subscription.cursor:
            self._ledger.advance(subscription.id, cursor)  # events skipped as not wanted
        return delivered

    # --- bad items: each is set aside alone ---

    def _read(self, project_id: uuid.UUID, cursor: int) -> list[Event | Unreadable]:
        """The events after ``cursor``; when a stored row cannot be read as an event, the
        ones before it, then that row as :class:`Unreadable`."""
        try:
            return list(self._store.events.between(project_id, cursor, _EVENT_BATCH))
        except CtxbaseError:
            raise
        except Exception:
            pass
        readable: list[Event | Unreadable] = []
        while len(readable) < _EVENT_BATCH:
            try:
                one = self._store.events.between(project_id, cursor, 1)
            except CtxbaseError:
                raise
            except Exception as error:
                stored = self._ledger.next_stored_event(project_id, cursor)
                if stored is None:
                    raise  # not a bad row: the error is the database's, retried as one
                readable.append(Unreadable(stored.id, stored.sequence, describe(error)))
                return readable
            if not one:
                break
            readable.extend(one)
            cursor = one[0].sequence
        return readable

    def _select(
        self, subscription: Subscription, events: Sequence[Event | Unreadable]
    ) -> list[bool | Poison]:
        """Which events to deliver; an event the matcher fails on is poison."""
        flags: list[bool | Poison] = [
            Poison(e.reason) if isinstance(e, Unreadable) else False for e in events
        ]
        readable = [(i, e) for i, e in enumerate(events) if isinstance(e, Event)]
        chosen: list[bool | Poison]
        try:
            chosen = list(self._matcher.select(subscription, [e for _, e in readable]))
        except CtxbaseError:
            raise
        except Exception:  # find the event it fails on: the others still get their answer
            chosen = []
            for _, event in readable:
                try:
                    chosen.append(self._matcher.select(subscription, [event])[0])
                except CtxbaseError:
                    raise
                except Exception as error:
                    chosen.append(Poison(describe(error)))
        for (i, _), flag in zip(readable, chosen, strict=True):
            flags[i] = flag
        return flags

    def _give_up(
        self, subscription: Subscription, event: EventRef, attempts: int, reason: str
    ) -> None:
        log.error(
            "Event %d of project %s cannot be delivered and goes to the dead letters of "
            "subscription %s: %s",
            event.sequence,
            subscription.project_id,
            subscription.id,
            reason,
        )
        self._ledger.dead_letter(subscription.id, event, attempts, reason)

    def _postpone(self, subscription: Subscription, reason: str) -> None:
        """Retry a subscription that failed as a whole later, with backoff, so it neither
        spins nor holds up the others; its cursor stays where deliveries left it."""
        attempts = subscription.attempts + 1
        with contextlib.suppress(CtxbaseError):
            self._ledger.postpone(
                subscription.id,
                attempts,
                None,
                reason,
                retry_at=utcnow() + self._backoff(attempts),
            )

    def _backoff(self, attempts: int) -> timedelta:
        seconds = self._settings.delivery_backoff_seconds * 2 ** (attempts - 1)
        return timedelta(seconds=min(seconds, self._settings.delivery_backoff_max_seconds))


class Poison:
    """The verdict on an event that can never be delivered, and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Unreadable:
    """A stored event row that cannot be read as an :class:`Event`."""

    def __init__(self, id: uuid.UUID, sequence: int, reason: str) -> None:
        self.id, self.sequence, self.reason = id, sequence, reason
