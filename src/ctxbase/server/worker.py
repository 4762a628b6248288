"""The server's backlog worker: fills in vectors left pending (provider down, new kinds)."""

from __future__ import annotations

import logging
import threading

from ctxbase.errors import CtxbaseError
from ctxbase.store import Store

log = logging.getLogger("ctxbase.worker")


class BacklogWorker:
    """Every ``interval`` seconds, embeds what is still pending; stops with the server."""

    def __init__(self, store: Store, interval: float) -> None:
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ctxbase-backlog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                done = self.store.embeddings.backfill()
            except CtxbaseError as error:  # provider still down, database busy: next time
                log.warning("Backlog run failed: %s", error)
                continue
            if done:
                log.info("Embedded %d pending item(s)", done)
