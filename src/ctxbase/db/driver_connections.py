"""Driver connections for the prepared-statement path, kept outside SQLAlchemy's pool.

Taking a connection from SQLAlchemy's pool and giving it back costs more than an indexed
SQLite read itself, and a tenth of a PostgreSQL point read: the pool wraps it in a
proxy, fires events and resets it on return. These connections need none of that,
because the prepared-statement path leaves them clean: an SQLite transaction it begins
it ends, and PostgreSQL connections here only read, in autocommit. Connections are still
made by the engine's pool, so the engine's connect events apply (SQLite pragmas,
pgvector's binary type), then detached from it. Each backend subclasses
:class:`DriverConnections` with its driver's checks.

As with the pool: at most ``limit`` connections exist at once, out or idle (a caller
waits up to ``timeout`` seconds for one), at most ``keep`` idle ones are kept, and a
connection older than ``recycle`` seconds is replaced (never, if not positive).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from sqlalchemy import exc as sa_exc


class DriverConnections:
    """Driver connections of one database, reused in any thread.

    ``list.pop`` and ``list.append`` are atomic, so taking an idle connection and giving
    one back need no lock: that is every read's path. Only making a connection, closing
    one and waiting for one take the lock, which guards the count of connections in
    existence (out or idle, at most ``limit``); a connection is in one thread's hands
    at a time.
    """

    def __init__(
        self, engine: Any, *, limit: int, keep: int, timeout: float, recycle: float = -1
    ) -> None:
        self._engine = engine
        self._limit = limit
        self._keep = keep
        self._timeout = timeout
        self._recycle = recycle if recycle > 0 else float("inf")
        self._idle: list[tuple[Any, float]] = []  # (connection, when it was given back)
        self._born: dict[int, float] = {}  # id(connection) -> when it was made
        self._count = 0  # connections out or idle
        self._waiters = 0  # callers waiting for one to be given back
        self._changed = threading.Condition(threading.Lock())
        #: Whether an idle connection is checked before use: not when none is ever
        #: recycled and the driver has no check (a file never drops its connection).
        self._checks_idle = (
            self._recycle != float("inf") or type(self)._usable is not DriverConnections._usable
        )

    def take(self) -> Any:
        while True:
            try:
                connection, since = self._idle.pop()
            except IndexError:
                connection = self._fresh_or_wait()
                if connection is None:
                    continue  # one was given back meanwhile
                return connection
            if not self._checks_idle:
                return connection
            now = time.monotonic()
            if now - self._born.get(id(connection), now) < self._recycle and self._usable(
                connection, now - since
            ):
                return connection
            self._discard(connection)

    def give_back(self, connection: Any) -> None:
        """Keep ``connection`` for the next caller if it is clean, else close it."""
        if self._clean(connection) and len(self._idle) < self._keep:
            self._idle.append((connection, time.monotonic()))
            # A waiter counts itself, under the lock, before it looks at the idle list:
            # either it sees this connection there, or this sees it waiting.
            if self._waiters:
                with self._changed:
                    self._changed.notify()
        else:
            self._discard(connection)

    def _fresh_or_wait(self) -> Any | None:
        """A new connection if fewer than ``limit`` exist; else None as soon as one is
        idle again, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + self._timeout
        with self._changed:
            self._waiters += 1
            try:
                while not self._idle:
                    if self._count < self._limit:
                        self._count += 1
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise sa_exc.TimeoutError(
                            "no free driver connection within the pool timeout"
                        )
                    self._changed.wait(left)
                else:
                    return None
            finally:
                self._waiters -= 1
        return self._fresh()

    def close(self) -> None:
        """Close the idle connections (the engine is being disposed)."""
        while self._idle:
            self._discard(self._idle.pop()[0])

    def _fresh(self) -> Any:
        """A new connection, counted already by the caller."""
        try:
            proxy = self._engine.raw_connection()  # runs the engine's connect events
        except BaseException:
            self._forget_one()
            raise
        connection = proxy.driver_connection
        proxy.detach()
        self._born[id(connection)] = time.monotonic()
        try:
            self._prepare(connection)
        except BaseException:
            self._discard(connection)
            raise
        return connection

    def _prepare(self, connection: Any) -> None:
        """Set a new connection up for this path."""

    def _usable(self, connection: Any, idle_seconds: float) -> bool:
        """Whether an idle connection can serve the next caller."""
        return True

    def _clean(self, connection: Any) -> bool:
        """Whether a connection given back can be kept (making it so if it can)."""
        return True

    def _discard(self, connection: Any) -> None:
        self._born.pop(id(connection), None)
        # a broken connection may fail to close; it is gone either way
        with contextlib.suppress(Exception):
            connection.close()
        self._forget_one()

    def _forget_one(self) -> None:
        """One connection fewer exists: a waiter may make one."""
        with self._changed:
            self._count -= 1
            self._changed.notify()
