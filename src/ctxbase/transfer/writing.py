"""Writing rows to a target table: a fast bulk path per backend, row by row on failure.

The bulk path (``executemany`` on SQLite, binary ``COPY`` on PostgreSQL) writes a whole
batch or nothing. When it fails, the batch is written again one row at a time, each in
its own savepoint, so one bad row is recorded and every other row still arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Column, Connection, Table, insert

from ctxbase.db.driver_errors import DRIVER_ERRORS
from ctxbase.db.urls import mask_url

#: What a failed write raises: driver errors, and values a type cannot take.
WRITE_ERRORS = (*DRIVER_ERRORS, ValueError, TypeError, OverflowError)


class BulkWriter(Protocol):
    """Writes a batch of rows (value tuples in ``columns`` order) or raises."""

    def write(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None: ...


class CoreInsertWriter:
    """``INSERT`` through SQLAlchemy Core: ``executemany`` with the columns' own types."""

    def __init__(self, table: Table, columns: Sequence[Column[Any]]) -> None:
        self.statement = insert(table)
        self.keys = [c.key for c in columns]

    def write(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        connection.execute(self.statement, [dict(zip(self.keys, row, strict=True)) for row in rows])


@dataclass(frozen=True)
class RowFailure:
    index: int  # position in the batch
    error: str


def describe(error: BaseException) -> str:
    """A one-line description of a driver error, without any password."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()[0] if str(original).strip() else repr(original)
    return mask_url(f"{type(original).__name__}: {text}")[:500]


def write_batch(
    connection: Connection,
    bulk: BulkWriter,
    single: CoreInsertWriter,
    rows: Sequence[Sequence[Any]],
) -> list[RowFailure]:
    """Write ``rows``; returns the rows that could not be written (the others are)."""
    if not rows:
        return []
    try:
        with connection.begin_nested():
            bulk.write(connection, rows)
        return []
    except WRITE_ERRORS:
        pass
    failures = []
    for index, row in enumerate(rows):
        try:
            with connection.begin_nested():
                single.write(connection, [row])
        except WRITE_ERRORS as error:
            failures.append(RowFailure(index, describe(error)))
    return failures
