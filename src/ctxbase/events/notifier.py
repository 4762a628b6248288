"""Wake whoever waits for new events: threads and asyncio tasks of this process.

Appends through this process notify at once. Appends through other processes arrive by
PostgreSQL LISTEN/NOTIFY (the append sends ``pg_notify`` inside its transaction, so the
notice goes out exactly when the events become visible). SQLite has no such channel, so
waiters there also re-read after ``poll_interval``; every waiter treats a wake-up only as
a hint and reads the database for the truth, so a lost or spurious notice costs at most
one poll interval, never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctxbase.db.database import Database

CHANNEL = "ctxbase_events"
log = logging.getLogger("ctxbase.events")


@dataclass(eq=False)
class _AsyncWaiter:
    project_id: uuid.UUID | None
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)


class EventNotifier:
    """One per Store. ``notify`` may be called from any thread."""

    def __init__(self, db: Database, *, poll_interval: float) -> None:
        self._db = db
        self.poll_interval = poll_interval
        self._condition = threading.Condition()
        self._generation = 0
        self._async_waiters: set[_AsyncWaiter] = set()
        self._listener: _Listener | None = None
        self._closed = False

    def notify(self, project_id: uuid.UUID | None = None) -> None:
        """Events were appended to ``project_id`` (None: to some project)."""
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
            waiters = [
                w
                for w in self._async_waiters
                if project_id is None or w.project_id is None or w.project_id == project_id
            ]
        for waiter in waiters:
            with contextlib.suppress(RuntimeError):  # its loop closed: it waits no more
                waiter.loop.call_soon_threadsafe(waiter.event.set)

    @property
    def generation(self) -> int:
        """Counts notices; read it before reading the database and pass it to a wait, so
        a notice arriving in between is not missed."""
        return self._generation

    def wait(self, since: int | None = None, timeout: float | None = None) -> None:
        """Block this thread until a notice arrives (or arrived after generation
        ``since``) or ``timeout`` (default: the poll interval) passes."""
        self._listen()
        with self._condition:
            seen = self._generation if since is None else since
            self._condition.wait_for(
                lambda: self._generation != seen or self._closed,
                timeout=self.poll_interval if timeout is None else timeout,
            )

    async def wait_async(
        self, project_id: uuid.UUID | None, since: int | None = None, timeout: float | None = None
    ) -> None:
        """Await a notice for ``project_id`` (or any notice after generation ``since``) or
        the timeout, without holding a thread."""
        self._listen()
        waiter = _AsyncWaiter(project_id, asyncio.get_running_loop())
        with self._condition:
            if since is not None and since != self._generation:
                return
            self._async_waiters.add(waiter)
        try:
            await asyncio.wait_for(
                waiter.event.wait(), self.poll_interval if timeout is None else timeout
            )
        except TimeoutError:
            pass
        finally:
            with self._condition:
                self._async_waiters.discard(waiter)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    def _listen(self) -> None:
        """Start listening for other processes' appends (where the backend sends notices),
        once."""
        if not self._db.backend.supports_listen_notify or self._listener or self._closed:
            return
        with self._condition:
            if self._listener is None:
                self._listener = _Listener(self._db, self)
                self._listener.start()


class _Listener:
    """A thread listening on ``ctxbase_events`` with a connection of its own."""

    def __init__(self, db: Database, notifier: EventNotifier) -> None:
        self._db = db
        self._notifier = notifier
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ctxbase-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._db.backend.listen(CHANNEL, self._on_notice, self._stop)
            except Exception as error:  # the server went away: retry, waiters still poll
                if self._stop.is_set():
                    return
                log.warning("Event listener lost its connection, retrying: %s", error)
                time.sleep(1.0)

    def _on_notice(self, payload: str | None) -> None:
        # None: listening (again); anything appended meanwhile makes waiters re-read.
        self._notifier.notify(None if payload is None else _project_of(payload))


def _project_of(payload: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(payload.partition(":")[0])
    except ValueError:
        return None
