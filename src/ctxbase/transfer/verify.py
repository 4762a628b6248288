"""Verifying a copy: per table, the source's rows (less the failed ones) against the
target's, by count and checksum, each computed the cheapest way its backend allows."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ctxbase.db.database import Database
from ctxbase.transfer.canonical import Checksum, RowRenderer
from ctxbase.transfer.jobs import JobRecord, key_from_json
from ctxbase.transfer.postgres import can_checksum_in_sql, sql_checksum
from ctxbase.transfer.reading import TableReader
from ctxbase.transfer.report import TableVerification, Verification
from ctxbase.transfer.tables import TablePlan, count_rows

PAGE_SIZE = 5000


def table_checksum(db: Database, plan: TablePlan, excluded: Iterable[Any] = ()) -> Checksum:
    """Rows and checksum of ``plan``'s table in ``db``, less the rows keyed ``excluded``.

    PostgreSQL computes it itself; SQLite's stored values are rendered as they are;
    anything else is decoded first."""
    excluded = list(excluded)
    columns = list(plan.table.columns)
    if db.backend.checksums_in_sql:
        with db.read() as connection:
            if can_checksum_in_sql(connection, columns):
                return sql_checksum(connection, plan.table, plan.key, excluded)
    reader = TableReader(db, plan, columns)
    from_storage = db.backend.renders_stored_rows
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


def verify_job(
    source: Database, target: Database, record: JobRecord, computed: dict[str, Checksum]
) -> Verification:
    """Each table of ``record``'s job, source against target: rows and checksums, less the
    failed rows. ``computed``: target checksums taken in the background once a table was
    final."""
    with ThreadPoolExecutor(2, thread_name_prefix="ctxbase-verify") as pool:
        targets: dict[str, Future[Checksum]] = {}
        for plan in record.plans:
            if target.backend.checksums_in_sql and plan.name not in computed:
                # the server computes them meanwhile, and several at once
                targets[plan.name] = pool.submit(table_checksum, target, plan)
                continue
            # (a single-connection SQLite target must not be read by two threads)
            done: Future[Checksum] = Future()
            done.set_result(computed.get(plan.name) or table_checksum(target, plan))
            targets[plan.name] = done
        return _compare(source, record, targets)


def _compare(
    source_db: Database, record: JobRecord, targets: dict[str, Future[Checksum]]
) -> Verification:
    tables = {}
    for plan in record.plans:
        record.save(current_table=f"verifying {plan.name}")
        state = record.checkpoint(plan.name)
        failed = [key_from_json(plan, key) for key in state["failed_keys"]]
        complete = len(failed) == state["failed"]  # every failed key was kept
        if "checksum" in state:  # hashed while copying: the source must still match it
            source = Checksum.from_json(state["checksum"])
            with source_db.read() as connection:
                complete = complete and count_rows(connection, plan) - len(failed) == source.rows
        else:
            source = table_checksum(source_db, plan, failed)
        target = targets[plan.name].result()
        equal = complete and source.rows == target.rows and source.hex == target.hex
        if not equal:
            record.log_error(plan.name, None, "verification: the target differs from the source")
        tables[plan.name] = TableVerification(
            source_rows=source.rows + len(failed),
            skipped_rows=state["failed"],
            target_rows=target.rows,
            source_checksum=source.hex,
            target_checksum=target.hex,
            equal=equal,
        )
    return Verification(passed=all(t.equal for t in tables.values()), tables=tables)
