"""Driver connections for the prepared-statement path, kept outside SQLAlchemy's pool.

Taking a connection from SQLAlchemy's pool and giving it back costs more than an indexed
SQLite read itself, and a tenth of a PostgreSQL point read: the pool wraps it in a
proxy, fires events and resets it on return. These connections need none of that,
because the prepared-statement path leaves them clean: an SQLite transaction it begins
it ends, and PostgreSQL connections here only read, in autocommit. Connections are still
made by the engine's pool, so the engine's connect events apply (SQLite pragmas,
pgvector's binary type), then detached from it. Each backend subclasses
:class:`DriverConnections` with its driver's checks.

As with the pool: at most ``limit`` connections are out at once (a caller waits up to
``timeout`` seconds for one), at most ``keep`` idle ones are kept, and a connection older
than ``recycle`` seconds is replaced (never, if not positive).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from sqlalchemy import exc as sa_exc


class DriverConnections:
    """Idle driver connections of one database, reused in any thread.

    ``list.pop`` and ``list.append`` are atomic, so the idle list needs no lock; a
    connection is in one thread's hands at a time.
    """

    def __init__(
        self, engine: Any, *, limit: int, keep: int, timeout: float, recycle: float = -1
    ) -> None:
        self._engine = engine
        self._keep = keep
        self._timeout = timeout
        self._recycle = recycle if recycle > 0 else float("inf")
        self._out = threading.BoundedSemaphore(limit)
        self._idle: list[tuple[Any, float]] = []  # (connection, when it was given back)
        self._born: dict[int, float] = {}  # id(connection) -> when it was made

    def take(self) -> Any:
        if not self._out.acquire(timeout=self._timeout):
            raise sa_exc.TimeoutError("no free driver connection within the pool timeout")
        try:
            while True:
                try:
                    connection, since = self._idle.pop()
                except IndexError:
                    return self._fresh()
                now = time.monotonic()
                if now - self._born.get(id(connection), now) < self._recycle and self._usable(
                    connection, now - since
                ):
                    return connection
                self._discard(connection)
        except BaseException:
            self._out.release()
            raise

    def give_back(self, connection: Any) -> None:
        """Keep ``connection`` for the next caller if it is clean, else close it."""
        try:
            if self._clean(connection) and len(self._idle) < self._keep:
                self._idle.append((connection, time.monotonic()))
            else:
                self._discard(connection)
        finally:
            self._out.release()

    def close(self) -> None:
        """Close the idle connections (the engine is being disposed)."""
        while self._idle:
            self._discard(self._idle.pop()[0])

    def _fresh(self) -> Any:
        proxy = self._engine.raw_connection()  # runs the engine's connect events
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
