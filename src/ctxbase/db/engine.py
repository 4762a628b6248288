"""Engines per database URL: SQLite pragmas and transactions, PostgreSQL pool.

SQLite concurrency rests on three choices:

- WAL journal, so readers never block the writer nor the writer the readers;
- ``busy_timeout``, so a writer waits for another writer's lock instead of failing;
- write transactions start with ``BEGIN IMMEDIATE``. A deferred transaction that reads and
  then writes cannot wait for the lock (SQLite returns "database is locked" at once, since
  waiting could deadlock); taking the write lock up front lets ``busy_timeout`` apply.
  Read transactions stay deferred so they never queue behind writers.

pysqlite's own transaction handling is turned off (``isolation_level=None``) so that
ctxbase emits every BEGIN itself.

In-memory SQLite is one connection shared by every thread, handed to one thread at a
time by a pool of size one: each in-memory connection would otherwise be its own empty
database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import QueuePool

from ctxbase.config import Settings
from ctxbase.db.urls import DatabaseURL

#: Execution option marking a connection whose next transaction will write.
WRITE_OPTION = "ctxbase_write"


def create_engine_for(db_url: DatabaseURL, settings: Settings) -> Engine:
    """A configured engine for ``db_url``; no connection is made yet."""
    if db_url.backend == "postgresql":
        return _postgres_engine(db_url, settings)
    engine = (
        _sqlite_memory_engine(settings)
        if db_url.in_memory
        else _sqlite_file_engine(db_url, settings)
    )
    _install_sqlite_transactions(engine, settings, wal=not db_url.in_memory)
    return engine


def _postgres_engine(db_url: DatabaseURL, settings: Settings) -> Engine:
    connect_args: dict[str, Any] = {"application_name": "ctxbase"}
    if "connect_timeout" not in db_url.url.query:
        connect_args["connect_timeout"] = 10
    return create_engine(
        db_url.url,
        echo=settings.database_echo,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_recycle=settings.pool_recycle,
        pool_pre_ping=settings.pool_pre_ping,
        connect_args=connect_args,
    )


def _sqlite_file_engine(db_url: DatabaseURL, settings: Settings) -> Engine:
    path = db_url.sqlite_path
    assert path is not None
    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return create_engine(
        db_url.url,
        echo=settings.database_echo,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_pre_ping=False,  # a local file cannot drop the connection
        connect_args={
            "check_same_thread": False,
            "isolation_level": None,
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
        },
    )


def _sqlite_memory_engine(settings: Settings) -> Engine:
    shared: list[sqlite3.Connection] = []

    def one_connection() -> sqlite3.Connection:
        if not shared:
            shared.append(
                sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            )
        return shared[0]

    return create_engine(
        "sqlite+pysqlite://",
        echo=settings.database_echo,
        creator=one_connection,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=max(settings.pool_timeout, settings.sqlite_busy_timeout_ms / 1000),
        pool_recycle=-1,
    )


def _install_sqlite_transactions(engine: Engine, settings: Settings, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: Any) -> None:
        writes = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
