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

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from psycopg.types.json import set_json_loads
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
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
    from ctxbase.db.vectors.wire import register_binary_vectors

    connect_args: dict[str, Any] = {
        "application_name": "ctxbase",
        # pgvector search defaults for every session (placeholders if pgvector is absent);
        # a search wanting more sets them for its own transaction.
        "options": (
            f"-c hnsw.ef_search={int(settings.hnsw_ef_search)} "
            "-c hnsw.iterative_scan=relaxed_order "
            f"-c ivfflat.probes={int(settings.ivfflat_probes)} "
            "-c ivfflat.iterative_scan=relaxed_order"
        ),
    }
    url_options = db_url.url.query.get("options")
    if isinstance(url_options, str):  # e.g. -csearch_path=… of a configured schema: kept
        connect_args["options"] = f"{url_options} {connect_args['options']}"
    if "connect_timeout" not in db_url.url.query:
        connect_args["connect_timeout"] = 10
    engine = create_engine(
        db_url.url,
        echo=settings.database_echo,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_recycle=settings.pool_recycle,
        connect_args=connect_args,
    )
    if settings.pool_pre_ping:
        _install_idle_pre_ping(engine, settings.pool_pre_ping_idle_seconds)

    @event.listens_for(engine, "connect")
    def adapt(connection: Any, _record: Any) -> None:
        register_binary_vectors(connection)  # see db/vectors/wire.py
        if connection.info.encoding == "utf-8":
            # json.loads on bytes first works out their encoding: decoding them first
            # halves the cost of reading a JSON column (search reads one per hit).
            set_json_loads(_loads_utf8, connection)

    return engine


def _loads_utf8(data: str | bytes) -> Any:
    return json.loads(data.decode() if isinstance(data, bytes) else data)


def _install_idle_pre_ping(engine: Engine, idle_seconds: float) -> None:
    """Ping a connection on checkout only when it sat idle longer than ``idle_seconds``.

    A ping on every checkout (SQLAlchemy's ``pool_pre_ping``) costs a round trip per
    operation, a quarter of a point read; a connection used moments ago is alive.
    A dead connection raises DisconnectionError, and the pool retries with a new one.
    """

    @event.listens_for(engine, "checkin")
    def remember_idle_start(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as e:
            raise sa_exc.DisconnectionError(str(e)) from e


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
