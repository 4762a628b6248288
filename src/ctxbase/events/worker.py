"""The delivery worker: pushes each subscription's owed events, in order, at least once.

Runs inside the server (a thread) or alone (``ctxbase worker``); any number of workers may
share one database. A pass claims due subscriptions (see :mod:`ctxbase.events.ledger`),
delivers their events after the cursor one by one, and moves the cursor after each
success, so a worker killed at any point leaves at most the event in flight to be
delivered again. A failure schedules a retry with exponential backoff; the last allowed
failure sends the event to the dead letters and delivery goes on with the next one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from ctxbase.db.schema import utcnow
from ctxbase.errors import CtxbaseError
from ctxbase.events.ledger import Claim, Ledger
from ctxbase.events.matching import Matcher
from ctxbase.events.transports import (
    DeliveryFailed,
    RedisTransport,
    Transport,
    WebhookTransport,
)

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
            "webhook": WebhookTransport(self._settings.webhook_timeout),
            "redis": RedisTransport(self._settings.redis_url),
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
            try:
                delivered += self._deliver(claim)
            except CtxbaseError as error:  # the database went away: the lease runs out
                log.warning(
                    "Delivery for subscription %s stopped: %s", claim.subscription.id, error
                )
            finally:
                with contextlib.suppress(CtxbaseError):
                    self._ledger.release(claim.subscription.id)
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
        secret = (
            self._store.secrets.decrypt(claim.secret_encrypted)
            if claim.secret_encrypted is not None
            else None
        )
        cursor, attempts, delivered = subscription.cursor, subscription.attempts, 0
        while not self._stop.is_set():
            events = self._store.events.between(subscription.project_id, cursor, _EVENT_BATCH)
            if not events:
                break
            for event, wanted in zip(
                events, self._matcher.select(subscription, events), strict=True
            ):
                if not wanted:  # skipping costs nothing, so it goes on while stopping
                    cursor = event.sequence
                    continue
                if self._stop.is_set():
                    break  # what is left stays owed, for the next run or worker
                try:
                    transport.send(subscription, event, secret)
                except DeliveryFailed as error:
                    attempts += 1
                    dead = self._ledger.failed(
                        subscription.id,
                        attempts,
                        cursor,
                        event,
                        str(error),
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

    def _backoff(self, attempts: int) -> timedelta:
        seconds = self._settings.delivery_backoff_seconds * 2 ** (attempts - 1)
        return timedelta(seconds=min(seconds, self._settings.delivery_backoff_max_seconds))
