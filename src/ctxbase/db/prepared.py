"""Prepared statements: SQLAlchemy Core compiled once, run on the driver's own cursor.

A round trip through SQLAlchemy's Connection costs ~70 µs of Python per statement, more
than the statement itself on SQLite. The hottest operations (appending and reading
messages, reading conversations, searching) therefore compile their Core statements once
per database and execute them on a DBAPI connection (see ``driver_connections``),
converting parameters and results with the very type processors SQLAlchemy would use:
the values are identical to the Core path, and the SQL is still written once, portably,
in Core. Point reads may instead hand ids and timestamps to the record's model as the
driver returns them (:meth:`PreparedStatement.records`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import Uuid
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from ctxbase.db.types import UTCDateTime

if TYPE_CHECKING:
    from ctxbase.db.database import Database
    from ctxbase.db.driver_connections import DriverConnections

Processor = Callable[[Any], Any] | None
R = TypeVar("R", bound=BaseModel)

#: Column types whose stored form a record's pydantic field parses itself (ids from
#: text or UUID, timestamps from ISO text or datetime): see PreparedStatement.records.
PARSED_BY_RECORDS = (Uuid, UTCDateTime)


class PreparedStatement:
    """One Core statement compiled for one database's dialect."""

    def __init__(self, db: Database, statement: ClauseElement) -> None:
        dialect = db.engine.dialect
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self.positional = dialect.positional
        self.order: Sequence[str] = compiled.positiontup or []
        self.binds: dict[str, Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        #: Values of binds the statement fixes itself (e.g. SQLite's OFFSET 0 after LIMIT)
        self._fixed = {
            name: bind.value for name, bind in compiled.binds.items() if not bind.required
        }
        #: (bind name, processor) in the order the driver takes the values
        self._ordered_binds = [
            (name, self.binds[name]) for name in (self.order if self.positional else self.binds)
        ]
        self._dialect = dialect
        self._result_columns = list(getattr(statement, "exported_columns", ()))
        self.columns: list[tuple[str, Processor]] | None = None  # known at first execution
        self._names: list[str] = []
        self._active: list[tuple[str, Callable[[Any], Any]]] = []
        self._for_records: list[tuple[str, Callable[[Any], Any]]] = []
        #: Told how long each execution took (the list is the database's: it may grow).
        self._observers = db.query_observers

    def _args(self, params: dict[str, Any]) -> Any:
        values = []
        for name, processor in self._ordered_binds:
            try:
                value = params[name]
            except KeyError:
                value = self._fixed[name]
            if processor is not None and value is not None:
                value = processor(value)
            values.append(value)
        if self.positional:
            return values
        return dict(zip(self.binds, values, strict=True))

    def _processors(self, cursor: Any) -> tuple[list[str], list[tuple[str, Callable[[Any], Any]]]]:
        """Column names, and the result processors of the columns that have one, chosen
        as SQLAlchemy does from the driver's column types at the first execution (some
        depend on them: a PostgreSQL float may come as float or Decimal)."""
        if self.columns is None:
            dialect = self._dialect
            columns = [
                (column.key, column.type.dialect_impl(dialect).result_processor(dialect, info[1]))
                for column, info in zip(self._result_columns, cursor.description, strict=True)
            ]
            self._names = [name for name, _ in columns]
            self._active = [(name, p) for name, p in columns if p is not None]
            self._for_records = [
                (name, p)
                for (name, p), column in zip(columns, self._result_columns, strict=True)
                if p is not None and not isinstance(column.type, PARSED_BY_RECORDS)
            ]
            self.columns = columns  # last: other threads read the lists once it is set
        return self._names, self._active

    def _fetch(self, cursor: Any, params: dict[str, Any], *, for_records: bool) -> list[Any]:
        started = time.perf_counter()
        cursor.execute(self.sql, self._args(params))
        rows = []
        if self._result_columns:
            if self.columns is None:
                self._processors(cursor)
            names = self._names
            processors = self._for_records if for_records else self._active
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=True))
                for name, processor in processors:
                    row[name] = processor(row[name])
                rows.append(row)
        if self._observers:
            elapsed = time.perf_counter() - started
            for observer in self._observers:
                observer(elapsed)
        return rows

    def rows(self, cursor: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Execute with ``params`` (a value for every bind) and return the rows as dicts."""
        return self._fetch(cursor, params, for_records=False)

    def first(self, cursor: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        rows = self.rows(cursor, params)
        return rows[0] if rows else None

    def records(self, cursor: Any, params: dict[str, Any], model: type[R]) -> list[R]:
        """Execute and return the rows as ``model`` records.

        Ids and timestamps go to the model as the driver gives them (on SQLite, text):
        pydantic parses them in one pass, where SQLAlchemy's processors would build the
        same values in Python first. The record's timestamp fields must be
        :data:`ctxbase.records.Timestamp` (UTC-aware), as a stored timestamp is UTC.
        """
        validate = model.model_validate
        return [validate(row) for row in self._fetch(cursor, params, for_records=True)]

    def read_records(self, db: Database, params: dict[str, Any], model: type[R]) -> list[R]:
        """:meth:`records` as one read of its own: the whole path of a point read.

        On a driver connection a read needs no transaction (see :class:`RawTransaction`),
        so this takes one, runs the statement and gives it back with nothing around them,
        and validates the records after; driver errors come out as ctxbase errors.
        """
        source = db.driver_connections
        if source is None:
            with db.raw() as cursor:
                return self.records(cursor, params, model)
        try:
            connection = source.take()
            try:
                rows = self._fetch(connection.cursor(), params, for_records=True)
            finally:
                source.give_back(connection)
        except db.backend.driver_errors as e:
            raise db.backend.translate_error(e) from e
        validate = model.model_validate
        return [validate(row) for row in rows]

    def many(self, cursor: Any, rows: list[dict[str, Any]]) -> None:
        """Execute once per parameter set (an insert of several rows)."""
        started = time.perf_counter()
        cursor.executemany(self.sql, [self._args(row) for row in rows])
        elapsed = time.perf_counter() - started
        for observer in self._observers:
            observer(elapsed)


class RawTransaction:
    """A driver cursor; a write runs in one transaction, committed when the block ends
    cleanly. Driver errors inside the block come out as ctxbase errors.

    Each backend subclasses it (``_begin`` and ``_end``): SQLite connections run in
    autocommit mode (ctxbase emits BEGIN itself), so a write takes the write lock at once
    and a read of one statement needs no transaction; reads on PostgreSQL run in
    autocommit too, saving the BEGIN and COMMIT round trips. Connections come from the
    database's driver connections (see ``driver_connections``) when it has them and,
    unless :attr:`writes_on_driver_connections`, only for what runs in autocommit: reads,
    and writes of one statement (``one_statement``), atomic by themselves.

    A class rather than a generator: entering and leaving it is a measurable part of an
    SQLite point read.
    """

    __slots__ = ("_connection", "_cursor", "_db", "_source", "_write")
    #: Whether write transactions, too, take the database's driver connections.
    writes_on_driver_connections: bool = False
    _connection: Any  # a driver connection, or the pool's proxy of one
    _cursor: Any
    _source: DriverConnections | None  # None: SQLAlchemy's pool
    #: Whether the block runs in a transaction of its own making: a write, unless it is
    #: one statement committing on its own (autocommit), like a read.
    _write: bool

    def __init__(self, db: Database, *, write: bool, one_statement: bool = False) -> None:
        self._db = db
        self._write = write and not one_statement
        source = db.driver_connections
        self._source = (
            source
            if source is not None and (self.writes_on_driver_connections or not self._write)
            else None
        )

    def __enter__(self) -> Any:
        try:
            return self._open()
        except self._db.backend.driver_errors as e:
            raise self._db.backend.translate_error(e) from e

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> None:
        backend = self._db.backend
        try:
            self._close(committing=exc is None)
        except backend.driver_errors as e:
            if exc is None:
                raise backend.translate_error(e) from e
        if isinstance(exc, backend.driver_errors):
            raise backend.translate_error(exc) from exc

    def _open(self) -> Any:
        source = self._source
        self._connection = source.take() if source is not None else self._db.engine.raw_connection()
        try:
            self._cursor = self._begin()
        except BaseException:
            self._release()
            raise
        return self._cursor

    def _close(self, *, committing: bool) -> None:
        try:
            self._end(committing=committing)
        finally:
            self._release()

    def _begin(self) -> Any:
        """A cursor on :attr:`_connection`, in a transaction if writing."""
        raise NotImplementedError

    def _end(self, *, committing: bool) -> None:
        """End what :meth:`_begin` began."""
        raise NotImplementedError

    def _release(self) -> None:
        if self._source is not None:
            self._source.give_back(self._connection)
        else:
            self._connection.close()
