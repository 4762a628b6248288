"""PostgreSQL through psycopg 3: a pool, autocommit reads, pgvector where the database has it.

Without the pgvector extension embeddings are stored as float32 bytes and searched
exactly in Python (see ``vectors/exact.py``); :attr:`PostgresBackend.has_vector_type`
says which, as detected once the schema exists.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_loads
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    cast,
    create_engine,
    event,
    literal,
    select,
    text,
    type_coerce,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.engine import URL

from ctxbase.db.backends.base import Backend, ServerDescription, UpsertInsert, VectorStorage
from ctxbase.db.driver_connections import DriverConnections
from ctxbase.db.fulltext import postgres as postgres_fulltext
from ctxbase.db.prepared import RawTransaction
from ctxbase.db.vectors import exact, pgvector
from ctxbase.db.vectors.base import Distance, VectorSearch
from ctxbase.db.vectors.postgres import (
    PgvectorStatus,
    ensure_pgvector,
    pgvector_status,
    vector_column_is_pgvector,
)

if TYPE_CHECKING:
    from ctxbase.db.database import Database

#: A compare-and-set finding its row locked polls it again after a random pause of up to
#: the first figure, doubling to the second, for at most the third (seconds).
CAS_BACKOFF = (0.002, 0.05, 2.0)
#: SQLSTATE of ``lock_not_available`` (NOWAIT found the row locked).
_LOCK_NOT_AVAILABLE = "55P03"

#: Serialises concurrent upgrades of one PostgreSQL database ("ctxb" in ASCII).
_ADVISORY_LOCK_KEY = 0x63747862


class PostgresReadConnections(DriverConnections):
    """psycopg connections in autocommit mode, for single statements: reads, and writes
    of one statement (``Database.raw(write=True, one_statement=True)``).

    A connection idle longer than ``ping_after`` seconds is pinged before use (as the
    pool does): a restarted server or a dropped link costs a new connection, not an error.
    """

    def __init__(
        self,
        engine: Any,
        *,
        limit: int,
        keep: int,
        timeout: float,
        recycle: float,
        ping_after: float,
    ) -> None:
        super().__init__(engine, limit=limit, keep=keep, timeout=timeout, recycle=recycle)
        self._ping_after = ping_after

    def _prepare(self, connection: Any) -> None:
        connection.autocommit = True

    def _usable(self, connection: Any, idle_seconds: float) -> bool:
        if connection.closed:
            return False
        if idle_seconds < self._ping_after:
            return True
        try:
            connection.execute("SELECT 1")
        except Exception:
            return False
        return True

    def _clean(self, connection: Any) -> bool:
        return (
            not connection.closed
            and not connection.broken
            and connection.info.transaction_status == TransactionStatus.IDLE
        )


class PostgresRawTransaction(RawTransaction):
    """Reads in autocommit (on a read connection, or a pooled one switched for the
    block); writes in psycopg's implicit transaction, committed at the end."""

    __slots__ = ()
    # the driver connections run in autocommit: reads and one-statement writes only
    writes_on_driver_connections = False

    def _begin(self) -> Any:
        if self._write or self._source is not None:
            return self._connection.cursor()
        driver = self._connection.driver_connection
        driver.autocommit = True
        return driver.cursor()

    def _end(self, *, committing: bool) -> None:
        if self._write:
            if committing:
                self._connection.commit()
            else:
                self._connection.rollback()
        elif self._source is None:
            self._connection.driver_connection.autocommit = False


class PostgresBackend(Backend):
    """A PostgreSQL database, with or without the pgvector extension."""

    name = "postgresql"
    dbapi: ClassVar[ModuleType] = psycopg
    naive_timestamps = False
    rebuilds_tables_to_alter = False
    reads_in_autocommit = True
    supports_listen_notify = True
    supports_returning_in_cte = True
    default_port = 5432
    config_requires = "database"
    bulk_loads = True
    checksums_in_sql = True
    renders_stored_rows = False
    backup_method = "pg_dump"

    def relax_durability(self, connection: Connection) -> None:
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")

    raw_transaction = PostgresRawTransaction

    # --- engine, connections, transactions ---

    def _create_engine(self) -> Engine:
        from ctxbase.db.vectors.wire import register_binary_vectors

        settings, db_url = self.settings, self.url
        connect_args: dict[str, Any] = {
            "application_name": "ctxbase",
            # pgvector search defaults for every session (placeholders if pgvector is
            # absent); a search wanting more sets them for its own transaction.
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

    def driver_connections(self) -> PostgresReadConnections:
        """Up to ``pool_size`` idle connections for reads, as the pool keeps for
        transactions."""
        s = self.settings
        return PostgresReadConnections(
            self.engine,
            limit=s.pool_size + s.max_overflow,
            keep=s.pool_size,
            timeout=s.pool_timeout,
            recycle=s.pool_recycle,
            ping_after=s.pool_pre_ping_idle_seconds if s.pool_pre_ping else math.inf,
        )

    @contextmanager
    def migration_connection(self, db: Database) -> Iterator[Connection]:
        """Transactional DDL under an advisory lock: concurrent upgrades run one by one."""
        with (
            db.translated_errors(),
            self.engine.connect() as connection,
            db.begin(connection, write=True),
        ):
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
            yield connection

    # --- compare-and-set ---

    def lock_for_compare_and_set(
        self, connection: Connection, table: Table, where: list[ColumnElement[bool]]
    ) -> None:
        """Take the row's lock with NOWAIT, pausing at random between tries while another
        writer holds it.

        Queueing on the lock (a plain UPDATE) wakes every waiter at the holder's commit:
        all hold the version the holder just replaced, all fail, re-read and queue again
        together, some twenty failures per success at 32 writers of one key. Waiters that
        pause at random come back one at a time, after the holder's commit, so most of
        them re-read a version that is still current when they write it. Past the last
        pause the caller writes anyway and waits for the lock as before.
        """
        probe = select(literal(1)).select_from(table).where(*where).with_for_update(nowait=True)
        pause, longest, patience = CAS_BACKOFF
        deadline = time.monotonic() + patience
        while True:
            try:
                with connection.begin_nested():
                    connection.execute(probe)
                return
            except sa_exc.OperationalError as e:
                if getattr(e.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                    raise
            if time.monotonic() >= deadline:
                return
            time.sleep(random.uniform(0, pause))
            pause = min(pause * 2, longest)

    # --- vectors: pgvector's indexes, or exact search over bytes ---

    def _stored_vector_form(self, db: Database) -> VectorStorage:
        with db.connect() as connection:
            return "pgvector" if vector_column_is_pgvector(connection) else "bytes"

    @cached_property
    def _index_options(self) -> pgvector.IndexOptions:
        s = self.settings
        return pgvector.IndexOptions(
            kind=s.vector_index,
            m=s.hnsw_m,
            ef_construction=s.hnsw_ef_construction,
            lists=s.ivfflat_lists,
        )

    @cached_property
    def _database_name(self) -> str:
        """The URL without password, which names the pgvector indexes built."""
        return self.url.masked()

    def prepare_vector_search(
        self, db: Database, model: str, dimensions: int, distance: Distance
    ) -> None:
        if self.has_vector_type and not pgvector.is_built(
            self._database_name, model, dimensions, distance, self._index_options.kind
        ):
            self.build_vector_index(db, model, dimensions, distance)

    def build_vector_index(
        self, db: Database, model: str, dimensions: int, distance: Distance
    ) -> None:
        if not self.has_vector_type:
            return  # exact search needs no index
        with db.connect(write=True) as connection:
            pgvector.ensure_index(
                connection, self._database_name, model, dimensions, distance, self._index_options
            )

    @property
    def vector_search(self) -> VectorSearch:
        return pgvector.search if self.has_vector_type else exact.search

    # --- full text: tsvector, ranked by BM25 here ---

    def text_search(
        self, connection: Connection, items: Table, conditions: list[Any], query: str, limit: int
    ) -> list[tuple[Any, float]]:
        return postgres_fulltext.search(connection, items, conditions, query, limit)

    # --- SQL that differs ---

    def insert(self, table: Table) -> UpsertInsert:
        return postgres_insert(table)

    def metadata_bind_values(self, prefix: str, key: str, value: Any) -> dict[str, Any]:
        return {f"{prefix}_key": key, f"{prefix}_value": json.dumps(value)}

    def metadata_condition(
        self, column: Any, prefix: str, value: Any, bound: Callable[[str], Any]
    ) -> ColumnElement[bool]:
        document = type_coerce(column, JSONB)
        condition: ColumnElement[bool] = document[bound(f"{prefix}_key")] == cast(
            bound(f"{prefix}_value"), JSONB
        )
        return condition

    # --- diagnostics and administration ---

    def describe(self, connection: Connection) -> ServerDescription:
        version = connection.execute(text("SHOW server_version")).scalar()
        has_schema = connection.execute(text("SELECT to_regclass('embeddings')")).scalar()
        storage: VectorStorage | None = None
        if has_schema:
            storage = "pgvector" if vector_column_is_pgvector(connection) else "bytes"
        return ServerDescription(
            server_version=version, pgvector=pgvector_status(connection), vector_storage=storage
        )

    def table_sizes(self, connection: Connection) -> dict[str, int]:
        rows = connection.execute(
            text(
                "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c"
                " WHERE c.relkind = 'r' AND c.relnamespace = to_regnamespace(current_schema())"
            )
        )
        return {name: int(size) for name, size in rows}

    def prepare_database(self, db: Database, *, schema: str | None) -> PgvectorStatus:
        """Create the configured schema if missing, and pgvector where the server has it."""
        with db.connect(write=True) as connection:
            if schema:
                quoted = connection.dialect.identifier_preparer.quote(schema)
                connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
            return ensure_pgvector(connection)

    @classmethod
    def config_url(cls, config: Mapping[str, Any], password: Callable[[], str | None]) -> str:
        query: dict[str, str] = {}
        if config["sslmode"]:
            query["sslmode"] = config["sslmode"]
        if config["schema"]:
            query["options"] = f"-csearch_path={config['schema']}"
        host = config["host"]
        if host and host.startswith("/"):  # a Unix socket directory goes in the query
            query["host"], host = host, None
        url = URL.create(
            "postgresql+psycopg",
            username=config["username"],
            password=password(),
            host=host,
            port=config["port"],
            database=config["database"],
            query=query,
        )
        return url.render_as_string(hide_password=False)

    # --- notices between processes: LISTEN/NOTIFY ---

    def listen(
        self, channel: str, on_notice: Callable[[str | None], None], stop: threading.Event
    ) -> None:
        """On a connection of its own (not a pooled one), in autocommit."""
        args, options = self.engine.dialect.create_connect_args(self.engine.url)
        options.setdefault("connect_timeout", 10)
        with psycopg.connect(*args, **options, autocommit=True) as connection:
            connection.execute(f"LISTEN {channel}")
            on_notice(None)
            while not stop.is_set():
                for notice in connection.notifies(timeout=0.5):
                    on_notice(notice.payload)


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
