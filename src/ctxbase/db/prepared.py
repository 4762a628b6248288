"""Prepared statements: SQLAlchemy Core compiled once, run on the driver's own cursor.

A round trip through SQLAlchemy's Connection costs ~70 µs of Python per statement, more
than the statement itself on SQLite. The hottest operations (appending and reading
messages, reading conversations and state) therefore compile their Core statements once
per database and execute them on a raw pooled DBAPI connection, converting parameters and
results with the very type processors SQLAlchemy would use: the values are identical to
the Core path, and the SQL is still written once, portably, in Core.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

if TYPE_CHECKING:
    from ctxbase.db.database import Database

Processor = Callable[[Any], Any] | None


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
        self._dialect = dialect
        self._result_columns = list(getattr(statement, "exported_columns", ()))
        self.columns: list[tuple[str, Processor]] | None = None  # known at first execution
        self._names: list[str] = []
        self._active: list[tuple[str, Callable[[Any], Any]]] = []
        self._observe = db.observe_query

    def _args(self, params: dict[str, Any]) -> Any:
        values = {}
        for name, processor in self.binds.items():
            value = params[name]
            values[name] = (
                processor(value) if processor is not None and value is not None else value
            )
        return [values[name] for name in self.order] if self.positional else values

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
            self.columns = columns  # last: other threads read the two lists once it is set
        return self._names, self._active

    def rows(self, cursor: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Execute with ``params`` (a value for every bind) and return the rows as dicts."""
        started = time.perf_counter()
        cursor.execute(self.sql, self._args(params))
        rows = []
        if self._result_columns:
            names, processors = self._processors(cursor)
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=True))
                for name, processor in processors:
                    row[name] = processor(row[name])
                rows.append(row)
        self._observe(time.perf_counter() - started)
        return rows

    def first(self, cursor: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        rows = self.rows(cursor, params)
        return rows[0] if rows else None

    def many(self, cursor: Any, rows: list[dict[str, Any]]) -> None:
        """Execute once per parameter set (an insert of several rows)."""
        started = time.perf_counter()
        cursor.executemany(self.sql, [self._args(row) for row in rows])
        self._observe(time.perf_counter() - started)


@contextmanager
def raw_transaction(db: Database, *, write: bool) -> Iterator[Any]:
    """A driver cursor; a write runs in one transaction, committed when the block ends
    cleanly.

    SQLite connections run in autocommit mode (ctxbase emits BEGIN itself), so a write
    takes the write lock at once and a read of one statement needs no transaction. Reads
    on PostgreSQL run in autocommit too, saving the BEGIN and COMMIT round trips: each
    statement sees the latest commits, as it would in a READ COMMITTED transaction.
    """
    sqlite = db.backend == "sqlite"
    with db.translated_errors():
        connection = db.engine.raw_connection()
        try:
            if not sqlite and not write:
                yield from _autocommit_cursor(connection)
                return
            cursor = connection.cursor()
            if sqlite and write:
                cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                if sqlite and write:
                    cursor.execute("ROLLBACK")
                elif not sqlite:
                    connection.rollback()
                raise
            if sqlite and write:
                cursor.execute("COMMIT")
            elif not sqlite:
                connection.commit()
        finally:
            connection.close()


def _autocommit_cursor(connection: Any) -> Iterator[Any]:
    """A psycopg cursor in autocommit mode; the pooled connection is given back as found."""
    driver = connection.driver_connection
    driver.autocommit = True
    try:
        yield driver.cursor()
    finally:
        driver.autocommit = False
