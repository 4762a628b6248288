"""A database: one engine, transactions, and the driver-error boundary."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

from ctxbase.config import Settings
from ctxbase.db.backends import backend_for
from ctxbase.db.backends.base import WRITE_OPTION, Backend
from ctxbase.db.prepared import PreparedStatement
from ctxbase.db.urls import DatabaseURL, parse_database_url

#: Compiled statements kept per database.
MAX_PREPARED = 512


class Database:
    """An engine for one database URL, with transactions that raise only ctxbase errors."""

    def __init__(self, url: str | DatabaseURL, *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_values()
        self.url = url if isinstance(url, DatabaseURL) else parse_database_url(url)
        #: What differs between databases; feature code asks it, never its name.
        self.backend: Backend = backend_for(self.url, self.settings)
        self.engine: Engine = self.backend.engine
        #: Called with the seconds each statement took on the prepared-statement path
        #: (the Core path reports through SQLAlchemy's engine events).
        self.query_observers: list[Callable[[float], None]] = []
        self._prepared: OrderedDict[str, PreparedStatement] = OrderedDict()
        self._prepared_lock = threading.Lock()
        #: Connections of the prepared-statement path outside the pool: every one of an
        #: SQLite file, PostgreSQL's reads. None for an in-memory database, which is one
        #: connection shared through the pool.
        self.driver_connections = self.backend.driver_connections()
        self._raw_transaction = self.backend.raw_transaction

    def prepared(self, name: str, build: Callable[[], ClauseElement]) -> PreparedStatement:
        """The statement ``name``, compiled for this database on first use.

        Searches name one statement per shape of filters, so the least recently used
        statements are dropped past :data:`MAX_PREPARED`."""
        with self._prepared_lock:
            statement = self._prepared.get(name)
            if statement is not None:
                self._prepared.move_to_end(name)
                return statement
        statement = PreparedStatement(self, build())
        with self._prepared_lock:
            self._prepared[name] = statement
            while len(self._prepared) > MAX_PREPARED:
                self._prepared.popitem(last=False)
        return statement

    def raw(
        self, *, write: bool = False, one_statement: bool = False
    ) -> AbstractContextManager[Any]:
        """A driver cursor in one transaction, for prepared statements.

        ``one_statement=True`` (with ``write``): the block runs a single statement that
        commits on its own, in autocommit, saving BEGIN and COMMIT (round trips on
        PostgreSQL). It must not delete from a full-text indexed table (SQLite erases
        deleted text before a transaction's commit, which such a write has not)."""
        return self._raw_transaction(self, write=write, one_statement=one_statement)

    @property
    def backend_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``: for display only."""
        return self.backend.name

    @contextmanager
    def translated_errors(self) -> Iterator[None]:
        """Re-raise any driver error inside the block as a ctxbase error."""
        try:
            yield
        except self.backend.driver_errors as e:
            raise self.backend.translate_error(e) from e

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads that need no snapshot across statements: in autocommit
        where the backend allows, saving the BEGIN and COMMIT round trips."""
        if not self.backend.reads_in_autocommit:
            with self.connect() as connection:
                yield connection
            return
        with self.translated_errors(), self.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[Connection]:
        """A connection inside one transaction, committed when the block ends cleanly.

        ``write=True`` takes SQLite's write lock at BEGIN, so a writer waits for another
        writer instead of failing; read transactions never wait.
        """
        with (
            self.translated_errors(),
            self.engine.connect() as connection,
            self.begin(connection, write=write),
        ):
            yield connection

    @contextmanager
    def begin(self, connection: Connection, *, write: bool = False) -> Iterator[Connection]:
        """One transaction on an open connection, committed when the block ends cleanly."""
        if write:
            connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """An ORM session over :meth:`connect`; committed when the block ends cleanly."""
        with self.connect(write=write) as connection:
            session = Session(bind=connection, expire_on_commit=False, autoflush=True)
            try:
                yield session
                session.flush()
            finally:
                session.close()

    def dispose(self) -> None:
        """Close every pooled connection (an in-memory database is gone after this)."""
        if self.driver_connections is not None:
            self.driver_connections.close()
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.masked()!r})"
