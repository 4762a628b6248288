"""The server's backlog worker: fills in vectors left pending (provider down, new kinds).

One bad item never stops it. An item the embedder fails on while the rest of its batch
succeeds is counted; after :data:`MAX_ATTEMPTS` runs it is set aside (logged, and left
pending for ``ctxbase embed``) until the server restarts, so the backlog behind it moves
on. An unexpected error in a run is logged and the next run comes all the same.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter

from ctxbase.errors import CtxbaseError
from ctxbase.store import Store

log = logging.getLogger("ctxbase.worker")
#: Runs in which an item may fail before the worker sets it aside.
MAX_ATTEMPTS = 3


class BacklogWorker:
    """Every ``interval`` seconds, embeds what is still pending; stops with the server."""

    def __init__(self, store: Store, interval: float) -> None:
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ctxbase-backlog", daemon=True)
        self.attempts: Counter[uuid.UUID] = Counter()
        self.set_aside: set[uuid.UUID] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def run_once(self) -> int:
        """One run over the backlog; the number of items embedded."""
        return self.store.embeddings.backfill(skip=self.set_aside, failed=self._failed)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                done = self.run_once()
            except CtxbaseError as error:  # provider still down, database busy: next time
                log.warning("Backlog run failed: %s", error)
                continue
            except Exception:  # a bug must not end the worker: the next run comes
                log.exception("Backlog run failed")
                continue
            if done:
                log.info("Embedded %d pending item(s)", done)

    def _failed(self, kind: str, item_id: uuid.UUID, error: Exception) -> None:
        self.attempts[item_id] += 1
        attempts = self.attempts[item_id]
        if attempts < MAX_ATTEMPTS:
            log.warning("Embedding %s %s failed (attempt %d): %s", kind, item_id, attempts, error)
            return
        self.set_aside.add(item_id)
        del self.attempts[item_id]
        log.error(
            "Embedding %s %s failed %d times; set aside until restart (`ctxbase embed` "
            "retries it): %s",
            kind,
            item_id,
            attempts,
            error,
        )
