"""The abstract backend: the primitives that differ between databases, and capability flags.

A :class:`Backend` is made per :class:`~ctxbase.db.database.Database` (it creates the
engine and keeps per-database state such as SQLite's in-memory vectors). Everything
above it is written once: it asks the backend to do what differs, or reads a flag.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from sqlalchemy import ColumnElement, Connection, Engine, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from ctxbase.config import Settings
from ctxbase.db.driver_errors import translate_error
from ctxbase.db.types import VECTOR_STORAGE_ATTR
from ctxbase.db.urls import DatabaseURL
from ctxbase.db.vectors.base import Distance, VectorSearch
from ctxbase.errors import CtxbaseError

if TYPE_CHECKING:
    from ctxbase.db.database import Database
    from ctxbase.db.driver_connections import DriverConnections
    from ctxbase.db.prepared import RawTransaction
    from ctxbase.db.vectors.postgres import PgvectorStatus

VectorStorage = Literal["pgvector", "bytes"]
#: An INSERT with ``on_conflict_do_update`` / ``on_conflict_do_nothing`` and ``excluded``.
UpsertInsert = sqlite.Insert | postgresql.Insert
#: Execution option marking a connection whose next transaction will write.
WRITE_OPTION = "ctxbase_write"


@dataclass(frozen=True)
class ServerDescription:
    """What diagnostics report of a database server."""

    server_version: str | None
    pgvector: PgvectorStatus | None  # None where the backend has no such extension
    vector_storage: VectorStorage | None  # None before the schema exists


class Backend(ABC):
    """One database's backend. Subclasses set the class attributes and implement the
    abstract methods; nothing above this layer tests which subclass it has."""

    #: For display (doctor, health, metrics) and to map URLs and configurations to
    #: classes; never to branch on.
    name: ClassVar[str]
    #: The driver's DB-API module, whose exception classes the error boundary catches.
    dbapi: ClassVar[ModuleType]
    #: Timestamps are stored without a zone (as UTC text) rather than as timestamptz.
    naive_timestamps: ClassVar[bool]
    #: Altering a table means copying it (Alembic's batch mode).
    rebuilds_tables_to_alter: ClassVar[bool]
    #: Single-statement reads run in autocommit, saving BEGIN and COMMIT round trips.
    reads_in_autocommit: ClassVar[bool]
    #: The server sends notices to listening connections (LISTEN/NOTIFY).
    supports_listen_notify: ClassVar[bool]
    #: ``WITH … AS (INSERT/UPDATE … RETURNING …)`` works in one statement.
    supports_returning_in_cte: ClassVar[bool]
    #: The port a URL without one connects to (None: no network).
    default_port: ClassVar[int | None]
    #: The configuration field a database configuration of this kind cannot do without.
    config_requires: ClassVar[str]
    #: A migration into it loads tables in bulk (COPY, possibly from a second process),
    #: with their indexes and foreign keys set aside until the rows are in.
    bulk_loads: ClassVar[bool]
    #: The server computes a table's checksum itself (verification reads no rows).
    checksums_in_sql: ClassVar[bool]
    #: Stored rows are plain values a checksum can render as read (no decoding first).
    renders_stored_rows: ClassVar[bool]
    #: How ``ctxbase backup`` copies it: a file copy, or the server's dump tool.
    backup_method: ClassVar[Literal["sqlite-backup", "pg_dump"]]

    def relax_durability(self, connection: Connection) -> None:  # noqa: B027 - optional
        """Let this transaction's commit skip the wait for the disk, where the database
        can (a bulk load redoes a lost page on resume); by default, nothing."""

    def __init__(self, url: DatabaseURL, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.engine: Engine = self._create_engine()
        self.driver_errors: tuple[type[BaseException], ...] = (
            sa_exc.SQLAlchemyError,
            self.dbapi.Error,
        )

    # --- engine, connections, transactions ---

    @abstractmethod
    def _create_engine(self) -> Engine:
        """A configured engine for :attr:`url`; no connection is made yet."""

    @abstractmethod
    def driver_connections(self) -> DriverConnections | None:
        """Connections of the prepared-statement path kept outside the pool, or None to
        take them from the pool."""

    #: The raw transaction class of :meth:`Database.raw` (driver cursor, one transaction).
    raw_transaction: ClassVar[type[RawTransaction]]

    def translate_error(self, error: BaseException) -> CtxbaseError:
        """The ctxbase error for a driver or SQLAlchemy error of this database."""
        return translate_error(error, self.url, dbapi=self.dbapi)

    @abstractmethod
    def migration_connection(self, db: Database) -> AbstractContextManager[Connection]:
        """A write transaction fit for DDL, one migration at a time."""

    # --- vectors ---

    @property
    def vector_storage(self) -> VectorStorage:
        """How embeddings are stored, as last detected (see :meth:`detect_vector_storage`)."""
        storage: VectorStorage = getattr(self.engine.dialect, VECTOR_STORAGE_ATTR, "bytes")
        return storage

    @property
    def has_vector_type(self) -> bool:
        """Embeddings are a native vector column searched by the server (pgvector)."""
        return self.vector_storage == "pgvector"

    def detect_vector_storage(self, db: Database) -> VectorStorage:
        """Read how the database stores embeddings and record it on the engine's dialect,
        where the embedding column type reads it."""
        storage = self._stored_vector_form(db)
        dialect = self.engine.dialect
        if getattr(dialect, VECTOR_STORAGE_ATTR, None) != storage:
            setattr(dialect, VECTOR_STORAGE_ATTR, storage)
            # Types memoise their per-dialect implementation; the vector's just changed.
            dialect._type_memos.clear()
        return storage

    def _stored_vector_form(self, db: Database) -> VectorStorage:
        return "bytes"

    @abstractmethod
    def prepare_vector_search(
        self, db: Database, model: str, dimensions: int, distance: Distance
    ) -> None:
        """Whatever a search of ``model`` needs first (cheap once done)."""

    @abstractmethod
    def build_vector_index(
        self, db: Database, model: str, dimensions: int, distance: Distance
    ) -> None:
        """Build the model's vector index now (re-embedding does, before switching)."""

    @property
    @abstractmethod
    def vector_search(self) -> VectorSearch:
        """The search of this database's vectors: ``vector_search(db, conditions, items,
        owner, model, query, distance, limit)`` is the ``limit`` items nearest ``query``
        meeting ``conditions``, best first, each with its score (see
        :func:`~ctxbase.db.vectors.base.reference_scores`) and row."""

    # --- compare-and-set ---

    def lock_for_compare_and_set(
        self, connection: Connection, table: Table, where: list[ColumnElement[bool]]
    ) -> None:
        """Before a compare-and-set of the row ``where`` selects, wait for writers of that
        row to finish, so a caller takes its turn instead of racing them. Nothing to do
        where a write transaction already excludes every other writer (SQLite)."""
        return None

    # --- full text ---

    @abstractmethod
    def text_search(
        self, connection: Connection, items: Table, conditions: list[Any], query: str, limit: int
    ) -> list[tuple[Any, float]]:
        """(item id, score) of the ``limit`` best full-text matches, higher is better."""

    # --- SQL that differs ---

    @abstractmethod
    def insert(self, table: Table) -> UpsertInsert:
        """An INSERT that offers ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""

    @abstractmethod
    def metadata_bind_values(self, prefix: str, key: str, value: Any) -> dict[str, Any]:
        """The bind values of one ``key == value`` pair of a JSON metadata filter."""

    @abstractmethod
    def metadata_condition(
        self, column: Any, prefix: str, value: Any, bound: Callable[[str], Any]
    ) -> ColumnElement[bool]:
        """``column``'s top-level ``key`` equals ``value``, with the pair's bind
        parameters (named ``{prefix}_…``) made by ``bound``."""

    # --- diagnostics and administration ---

    @abstractmethod
    def describe(self, connection: Connection) -> ServerDescription:
        """Server version and vector support, for `ctxbase doctor` and the health check."""

    @abstractmethod
    def table_sizes(self, connection: Connection) -> dict[str, int]:
        """Bytes per table (empty if the database cannot tell)."""

    def prepare_database(self, db: Database, *, schema: str | None) -> PgvectorStatus | None:
        """Get a new database ready for the schema (its schema namespace, extensions);
        the vector extension's status where the backend has one."""
        return None

    @classmethod
    @abstractmethod
    def config_url(cls, config: Mapping[str, Any], password: Callable[[], str | None]) -> str:
        """The URL of a stored database configuration (``password`` decrypts its own)."""

    # --- notices between processes ---

    def listen(
        self, channel: str, on_notice: Callable[[str | None], None], stop: threading.Event
    ) -> None:
        """Pass notices sent on ``channel`` to ``on_notice`` until ``stop`` is set (None
        once listening, then each payload). Raises when the connection is lost."""
        raise NotImplementedError(f"{self.name} sends no notices between connections")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url.masked()!r})"
