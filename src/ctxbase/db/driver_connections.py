"""SQLite file connections for the prepared-statement path, kept outside SQLAlchemy's pool.

Taking a connection from SQLAlchemy's pool and giving it back costs more than an indexed
SQLite read itself: the pool wraps it in a proxy, fires events and resets it on return.
An SQLite file connection needs none of that here, because the prepared-statement path
ends every transaction it begins: an idle connection is always clean. Connections are
still made by the engine's pool, so the same pragmas apply, then detached from it.
"""

from __future__ import annotations

import sqlite3
from typing import Any


class SQLiteDriverConnections:
    """Idle ``sqlite3`` connections of one SQLite file database, reused in any thread.

    ``list.pop`` and ``list.append`` are atomic, so no lock is needed; a connection is in
    one thread's hands at a time. At most ``keep`` idle connections are kept.
    """

    def __init__(self, engine: Any, *, keep: int) -> None:
        self._engine = engine
        self._keep = keep
        self._idle: list[sqlite3.Connection] = []

    def take(self) -> sqlite3.Connection:
        try:
            return self._idle.pop()
        except IndexError:
            pass
        proxy = self._engine.raw_connection()  # runs the engine's connect events (pragmas)
        connection: sqlite3.Connection = proxy.driver_connection
        proxy.detach()
        return connection

    def give_back(self, connection: sqlite3.Connection) -> None:
        """Keep ``connection`` for the next caller, rolled back if a transaction is open."""
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except sqlite3.Error:
            connection.close()
            return
        if len(self._idle) >= self._keep:
            connection.close()
        else:
            self._idle.append(connection)

    def close(self) -> None:
        """Close the idle connections (the engine is being disposed)."""
        while self._idle:
            self._idle.pop().close()
