"""Writing pages to a target table: a fast bulk path per backend, row by row on failure.

The bulk path (``executemany`` on SQLite, binary ``COPY`` on PostgreSQL) writes a whole
page or nothing. When it fails, the page is written again one row at a time, each in its
own savepoint, so one bad row is recorded and every other row still arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Column, Connection, Table, bindparam, insert, update

from ctxbase.db.driver_errors import DRIVER_ERRORS
from ctxbase.db.urls import mask_url
from ctxbase.transfer.reading import Page

#: What a failed write raises: driver errors, and values a type cannot take.
WRITE_ERRORS = (*DRIVER_ERRORS, ValueError, TypeError, OverflowError)


class PageWriter(Protocol):
    """Writes a whole page or raises: ``prepare`` (CPU work, no database) then ``write``."""

    def prepare(self, page: Page) -> Any: ...

    def write(self, connection: Connection, prepared: Any) -> None: ...


class RowWriter(Protocol):
    """Writes decoded rows (value tuples in the reader's column order) or raises."""

    def write_rows(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None: ...


class _CoreWriter:
    """Runs ``statement`` once per row through SQLAlchemy Core, the row's values bound to
    ``keys`` (set by the subclass)."""

    statement: Any
    keys: list[str]

    def prepare(self, page: Page) -> list[dict[str, Any]]:
        keys = self.keys
        return [dict(zip(keys, row, strict=True)) for row in page.decoded_values()]

    def write(self, connection: Connection, prepared: list[dict[str, Any]]) -> None:
        connection.execute(self.statement, prepared)

    def write_rows(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        keys = self.keys
        connection.execute(self.statement, [dict(zip(keys, row, strict=True)) for row in rows])


class CoreInsertWriter(_CoreWriter):
    """``INSERT`` through SQLAlchemy Core: ``executemany`` with the columns' own types."""

    def __init__(self, table: Table, columns: Sequence[Column[Any]]) -> None:
        self.statement = insert(table)
        self.keys = [c.key for c in columns]


@dataclass(frozen=True)
class RowFailure:
    key: Any
    error: str


def describe(error: BaseException) -> str:
    """A one-line description of a driver error, without any password."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return mask_url(f"{type(original).__name__}: {lines[0] if lines else ''}")[:500]


#: ``prepare`` found a row it cannot take: write row by row straight away.
UNPREPARED = object()


def prepare_page(bulk: PageWriter, page: Page) -> Any:
    try:
        return bulk.prepare(page)
    except (ValueError, TypeError, OverflowError):
        return UNPREPARED


def write_page(
    connection: Connection, bulk: PageWriter, single: RowWriter, page: Page, prepared: Any
) -> list[RowFailure]:
    """Write ``page`` (``prepared`` by ``bulk``); returns the rows that could not be
    written, all others are."""
    if not page.raw:
        return []
    if prepared is not UNPREPARED:
        try:
            with connection.begin_nested():
                bulk.write(connection, prepared)
            return []
        except WRITE_ERRORS:
            pass
    failures = []
    for row in page.rows:
        if row.values is None:
            failures.append(RowFailure(row.key, row.error or "cannot read the row"))
            continue
        try:
            with connection.begin_nested():
                single.write_rows(connection, [row.values])
        except WRITE_ERRORS as error:
            failures.append(RowFailure(row.key, describe(error)))
    return failures


class LinkWriter(_CoreWriter):
    """Sets the self-referencing columns of rows already written: rows are (key, *refs)."""

    def __init__(self, table: Table, key: Column[Any], refs: list[Column[Any]]) -> None:
        self.keys = ["_key", *(f"_{c.key}" for c in refs)]
        values: dict[str, Any] = {c.key: bindparam(f"_{c.key}", type_=c.type) for c in refs}
        # Columns stamped on update (updated_at) keep the value copied from the source.
        values.update({c.key: c for c in table.columns if c.onupdate is not None})
        self.statement = (
            update(table).where(key == bindparam("_key", type_=key.type)).values(values)
        )
