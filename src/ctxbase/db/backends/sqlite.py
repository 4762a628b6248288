"""SQLite: a file or memory, pragmas and explicit transactions, vectors searched in memory.

Concurrency rests on three choices:

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
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    func,
    literal_column,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import QueuePool

from ctxbase.db.backends.base import WRITE_OPTION, Backend, ServerDescription, UpsertInsert
from ctxbase.db.driver_connections import DriverConnections
from ctxbase.db.fulltext import sqlite as sqlite_fulltext
from ctxbase.db.fulltext.sqlite_erasure import erase_deleted_text
from ctxbase.db.prepared import RawTransaction
from ctxbase.db.schema import EMBEDDING_OWNER_COLUMNS
from ctxbase.db.vectors.ann import AnnOptions
from ctxbase.db.vectors.base import Distance, VectorSearch
from ctxbase.db.vectors.sqlite import SQLiteVectorIndex, SQLiteVectorOptions
from ctxbase.errors import SchemaError

if TYPE_CHECKING:
    from ctxbase.db.database import Database


class SQLiteDriverConnections(DriverConnections):
    """``sqlite3`` connections of an SQLite file, for reads and writes."""

    def _clean(self, connection: Any) -> bool:
        if not connection.in_transaction:
            return True
        try:
            connection.execute("ROLLBACK")  # left open by a failure: never reuse it dirty
        except Exception:
            return False
        return True


class SQLiteRawTransaction(RawTransaction):
    """Autocommit connections: a write begins (and ends) its transaction explicitly."""

    __slots__ = ()
    writes_on_driver_connections = True

    def _begin(self) -> Any:
        cursor = self._connection.cursor()
        if self._write:
            cursor.execute("BEGIN IMMEDIATE")
        return cursor

    def _end(self, *, committing: bool) -> None:
        if self._write and self._connection.in_transaction:
            if committing:
                erase_deleted_text(self._cursor)
            self._cursor.execute("COMMIT" if committing else "ROLLBACK")


class SQLiteBackend(Backend):
    """An SQLite file, or an in-memory database."""

    name = "sqlite"
    dbapi: ClassVar[ModuleType] = sqlite3
    naive_timestamps = True
    rebuilds_tables_to_alter = True
    reads_in_autocommit = False
    supports_listen_notify = False
    supports_returning_in_cte = False
    default_port = None
    config_requires = "sqlite_path"
    bulk_loads = False
    checksums_in_sql = False
    renders_stored_rows = True
    backup_method = "sqlite-backup"
    raw_transaction = SQLiteRawTransaction

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._vector_index: SQLiteVectorIndex | None = None
        self._vector_index_lock = threading.Lock()

    # --- engine, connections, transactions ---

    def _create_engine(self) -> Engine:
        in_memory = self.url.in_memory
        engine = _memory_engine(self.settings) if in_memory else self._file_engine()
        _install_transactions(engine, self.settings.sqlite_busy_timeout_ms, wal=not in_memory)
        return engine

    def _file_engine(self) -> Engine:
        path, settings = self.url.sqlite_path, self.settings
        assert path is not None
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return create_engine(
            self.url.url,
            echo=settings.database_echo,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            pool_pre_ping=False,  # a local file cannot drop the connection
            json_deserializer=_loads_json,
            connect_args={
                "check_same_thread": False,
                "isolation_level": None,
                "timeout": settings.sqlite_busy_timeout_ms / 1000,
            },
        )

    def driver_connections(self) -> SQLiteDriverConnections | None:
        """Every connection of a file; None in memory, one connection shared by the pool."""
        if not self.url.sqlite_path:
            return None
        s = self.settings
        return SQLiteDriverConnections(
            self.engine,
            limit=s.pool_size + s.max_overflow,
            keep=s.pool_size,
            timeout=s.pool_timeout,
        )

    @contextmanager
    def migration_connection(self, db: Database) -> Iterator[Connection]:
        """SQLite rebuilds a table to alter it (copy, drop, rename); with foreign keys on,
        the drop would cascade into child tables and delete their rows. Foreign keys are
        therefore off during migrations (the pragma only works outside a transaction)
        and checked after."""
        with db.translated_errors(), self.engine.connect() as connection:
            driver = connection.connection.dbapi_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys=OFF")
            try:
                with db.begin(connection, write=True):
                    yield connection
                    _check_foreign_keys(connection)
            finally:
                driver.execute("PRAGMA foreign_keys=ON")

    # --- vectors: held in memory, with an HNSW index for large collections ---

    @property
    def vector_index(self) -> SQLiteVectorIndex:
        """The database's in-memory vectors, shared by every view of its store."""
        with self._vector_index_lock:
            if self._vector_index is None:
                s = self.settings
                options = SQLiteVectorOptions(
                    hnsw_min_vectors=s.sqlite_hnsw_min_vectors,
                    ann=AnnOptions(
                        connectivity=s.hnsw_m,
                        expansion_add=s.hnsw_ef_construction,
                        expansion_search=s.hnsw_ef_search,
                    ),
                )
                self._vector_index = SQLiteVectorIndex(options)
            return self._vector_index

    def prepare_vector_search(
        self, db: Database, model: str, dimensions: int, distance: Distance
    ) -> None:
        self.vector_index.prepare(db)

    def build_vector_index(
        self, db: Database, model: str, dimensions: int, distance: Distance
    ) -> None:
        owners = list(EMBEDDING_OWNER_COLUMNS.values())
        self.vector_index.build(db, model, owners, distance)

    @property
    def vector_search(self) -> VectorSearch:
        return self.vector_index.search

    # --- full text: FTS5 ---

    def text_search(
        self, connection: Connection, items: Table, conditions: list[Any], query: str, limit: int
    ) -> list[tuple[Any, float]]:
        return sqlite_fulltext.search(connection, items, conditions, query, limit)

    # --- SQL that differs ---

    def insert(self, table: Table) -> UpsertInsert:
        return sqlite_insert(table)

    def metadata_bind_values(self, prefix: str, key: str, value: Any) -> dict[str, Any]:
        values: dict[str, Any] = {f"{prefix}_path": f'$."{key}"'}
        if value is not None:
            values[f"{prefix}_value"] = json.dumps(value)
        return values

    def metadata_condition(
        self, column: Any, prefix: str, value: Any, bound: Callable[[str], Any]
    ) -> ColumnElement[bool]:
        if value is None:  # json_extract cannot tell JSON null from a missing key
            return func.json_type(column, bound(f"{prefix}_path")) == literal_column("'null'")
        whole: Any = literal_column("'$'")
        return func.json_extract(column, bound(f"{prefix}_path")) == func.json_extract(
            bound(f"{prefix}_value"), whole
        )

    # --- diagnostics and administration ---

    def describe(self, connection: Connection) -> ServerDescription:
        return ServerDescription(
            server_version=f"SQLite {sqlite3.sqlite_version}", pgvector=None, vector_storage="bytes"
        )

    def table_sizes(self, connection: Connection) -> dict[str, int]:
        """Pages of each table, its indexes and its full-text index (``<table>_fts_*``)."""
        try:
            rows = connection.execute(
                text(
                    "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s"
                    " JOIN sqlite_master m ON m.name = s.name GROUP BY m.tbl_name"
                )
            )
        except sa_exc.OperationalError:  # pragma: no cover - SQLite built without dbstat
            return {}
        sizes: dict[str, int] = {}
        for name, size in rows:
            owner = _FTS_SHADOW.sub("", name)
            sizes[owner] = sizes.get(owner, 0) + int(size)
        return sizes

    @classmethod
    def config_url(cls, config: Mapping[str, Any], password: Callable[[], str | None]) -> str:
        return f"sqlite:///{config['sqlite_path']}"


#: The tables of a full-text index, named after the table they index.
_FTS_SHADOW = re.compile(r"_fts(_(data|idx|content|docsize|config))?$")

#: A surrogate code point left alone after parsing (a pair has become one character).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _loads_json(text: str) -> Any:
    """A JSON column, with each lone surrogate read as U+FFFD.

    SQLite stores JSON as escaped ASCII, so a ``"\\ud800"`` written before inputs were
    checked is still there; parsed, it is a string no UTF-8 output (a response, an export,
    a delivery) can hold. PostgreSQL's jsonb never stores one."""
    value = json.loads(text)
    if "\\ud" in text or "\\uD" in text:  # only non-ASCII text written escaped can hold one
        return _without_lone_surrogates(value)
    return value


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _memory_engine(settings: Any) -> Engine:
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
        json_deserializer=_loads_json,
        creator=one_connection,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=max(settings.pool_timeout, settings.sqlite_busy_timeout_ms / 1000),
        pool_recycle=-1,
    )


#: Rows changed by a connection when its transaction began: a commit with the same count
#: wrote nothing, so it has nothing to erase (see ``erase_deleted_text``).
_CHANGES_AT_BEGIN = "ctxbase_changes_at_begin"


def _install_transactions(engine: Engine, busy_timeout_ms: int, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Freed pages and cells are zeroed: deleted text must not stay in the file.
            cursor.execute("PRAGMA secure_delete=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: Any) -> None:
        writes = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
        connection.info[_CHANGES_AT_BEGIN] = connection.connection.dbapi_connection.total_changes

    @event.listens_for(engine, "commit")
    def erase_deleted(connection: Any) -> None:
        driver = connection.connection.dbapi_connection
        if driver is None or not driver.in_transaction:
            return
        if driver.total_changes != connection.info.get(_CHANGES_AT_BEGIN):  # it wrote
            cursor = driver.cursor()
            try:
                erase_deleted_text(cursor)
            finally:
                cursor.close()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise SchemaError(
            "The migration left rows pointing at missing records", details=[list(r) for r in broken]
        )


def holds_an_sqlite_database(path: Path) -> bool:
    """Whether the file at ``path`` is an SQLite database (an empty one counts: SQLite makes
    it one). Asked of SQLite itself, read-only: opening and closing the file with plain
    ``open()`` would drop every lock this process holds on it (POSIX locks belong to the
    process, not to a descriptor), and another process would then take the live
    database's write-ahead log for a stale one and delete it."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        connection.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError:
        return False
    finally:
        connection.close()
    return True
