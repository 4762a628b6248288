"""Row counts and checksums of a table, computed the cheapest way its backend allows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ctxbase.db.database import Database
from ctxbase.transfer.canonical import Checksum, RowRenderer
from ctxbase.transfer.postgres import can_checksum_in_sql, sql_checksum
from ctxbase.transfer.reading import TableReader
from ctxbase.transfer.tables import TablePlan

PAGE_SIZE = 5000


def table_checksum(db: Database, plan: TablePlan, excluded: Iterable[Any] = ()) -> Checksum:
    """Rows and checksum of ``plan``'s table in ``db``, less the rows keyed ``excluded``.

    PostgreSQL computes it itself; SQLite's stored values are rendered as they are;
    anything else is decoded first."""
    excluded = list(excluded)
    columns = list(plan.table.columns)
    if db.backend == "postgresql":
        with db.read() as connection:
            if can_checksum_in_sql(connection, columns):
                return sql_checksum(connection, plan.table, plan.key, excluded)
    reader = TableReader(db, plan, columns)
    from_storage = db.backend == "sqlite"
    renderer = (RowRenderer.for_sqlite if from_storage else RowRenderer.for_decoded)(columns)
    skip = set(excluded)
    checksum, after = Checksum(), None
    while True:
        with db.read() as connection:
            page = reader.page(connection, after, PAGE_SIZE)
        if not page.raw:
            return checksum
        if from_storage:
            rows: list[Any] = page.raw
            if skip:
                rows = [row for row in rows if reader.key_of(row) not in skip]
        else:
            decoded = [row for row in page.rows if row.key not in skip]
            checksum.rows += sum(1 for row in decoded if row.values is None)
            rows = [row.values for row in decoded if row.values is not None]
        renderer.add_to(checksum, rows)
        after = page.last_key
