"""Copying tables between two databases: batches, checkpoints, an error log, verification.

A job copies its tables parents first, each in primary-key order, ``batch_size`` rows at a
time. Every batch is one transaction on the target holding the rows *and* the job's
checkpoint (last key, rows, running checksum), so a job stopped at any moment (crash,
SIGKILL, cancel) resumes after its last committed batch. A row that cannot be read or
written goes to the error log; the rest continue. The job ends with a verification:
per table, the source's row count and the checksum of the rows read from it, against a
count and checksum of everything the target holds.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Connection, bindparam, func, or_, select, update

from ctxbase.config import Settings
from ctxbase.db.schema import utcnow
from ctxbase.errors import ConflictError, CtxbaseError
from ctxbase.secrets import Secrets
from ctxbase.transfer import jobs
from ctxbase.transfer.canonical import RowHasher, as_hex, combine
from ctxbase.transfer.endpoints import Endpoint
from ctxbase.transfer.postgres import PostgresCopyWriter
from ctxbase.transfer.reading import SourceRow, TableReader
from ctxbase.transfer.report import MigrationReport, Progress, TableVerification, Verification
from ctxbase.transfer.tables import TablePlan, plan_tables
from ctxbase.transfer.writing import BulkWriter, CoreInsertWriter, RowFailure, write_batch

log = logging.getLogger("ctxbase.transfer")

ProgressCallback = Callable[[MigrationReport], None]
DEFAULT_BATCH_SIZE = 2000


class Migration:
    """One job between two open endpoints; :meth:`run` copies, verifies and reports."""

    def __init__(
        self,
        source: Endpoint,
        target: Endpoint,
        job_id: uuid.UUID,
        *,
        settings: Settings,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.source, self.target, self.job_id = source, target, job_id
        self.settings = settings
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        with target.db.connect() as connection:
            self.job = jobs.load_job(connection, job_id)
        self.plans = plan_tables(self.job["tables"])
        self.batch_size = int(self.job["options"].get("batch_size", DEFAULT_BATCH_SIZE))
        self._run_rows = 0
        self._run_started = time.monotonic()

    # --- creating -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        source: Endpoint,
        target: Endpoint,
        *,
        tables: Sequence[str] | None,
        batch_size: int,
        reembed: bool,
        settings: Settings,
        job_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Record a new pending job in the target (which must hold none of its tables' rows)."""
        plans = plan_tables(tables)
        _require_empty(target, plans)
        with source.db.read() as connection:
            totals = {p.name: _count(connection, p) for p in plans}
        secrets = Secrets(settings)
        with target.db.connect(write=True) as connection:
            return jobs.create_job(
                connection,
                {
                    "id": job_id,
                    "source": source.describe(),
                    "target": target.describe(),
                    "source_encrypted": secrets.encrypt(source.url) if source.url else None,
                    "target_encrypted": secrets.encrypt(target.url) if target.url else None,
                    "tables": [p.name for p in plans],
                    "options": {"batch_size": batch_size, "reembed": reembed},
                    "totals": totals,
                },
            )

    # --- running --------------------------------------------------------------------------

    def run(self) -> MigrationReport:
        """Copy what is left, verify, and return the final report; never raises for a
        failure during the copy (the job records it as ``failed``)."""
        self._save(status="running", started_at=self.job["started_at"] or utcnow())
        try:
            for plan in self.plans:
                if not self._copy(plan):
                    return self._finish("cancelled")
            for plan in self.plans:
                if plan.self_references and not self._link(plan):
                    return self._finish("cancelled")
            verification = self._verify()
            self._save(verification=verification.model_dump(mode="json"), current_table=None)
            if self.job["options"].get("reembed"):
                self._reembed()
        except CtxbaseError as error:
            log.error("Migration %s failed: %s", self.job_id, error)
            self._log_error(None, None, f"{error.code}: {error}")
            return self._finish("failed")
        failed = bool(self.job["error_log"]) or not verification.passed
        return self._finish("completed_with_errors" if failed else "completed")

    def _copy(self, plan: TablePlan) -> bool:
        state = self._checkpoint(plan.name)
        if state["done"]:
            return True
        reader = TableReader(self.source.db, plan)
        hasher = RowHasher(plan.table, reader.columns)
        blank = [i for i, c in enumerate(reader.columns) if c.key in plan.self_references]
        single = CoreInsertWriter(plan.table, reader.columns)
        bulk: BulkWriter | None = None
        after = _key_from_json(plan, state["after"])
        self._save(current_table=plan.name)
        while not self.cancel.is_set():
            with self.source.db.read() as connection:
                page = reader.page(connection, after, self.batch_size)
            if not page:
                state["done"] = True
                self._save(checkpoints=self.job["checkpoints"])
                return True
            readable = [row for row in page if row.values is not None]
            rows = [_blanked(row.values or (), blank) for row in readable]
            with self.target.db.connect(write=True) as connection:
                bulk = bulk or self._bulk_writer(connection, plan, reader.columns)
                failures = write_batch(connection, bulk, single, rows)
                failed_keys = {readable[f.index].key for f in failures}
                written = [row for row in readable if row.key not in failed_keys]
                hashes = [hasher.row_hash(row.values or ()) for row in written]
                checksum = combine(int(state["checksum"], 16), *hashes)
                self._record_batch(
                    connection, plan.name, page, readable, failures, written, checksum
                )
            after = page[-1].key
            self._notify()
        return False

    def _bulk_writer(
        self, connection: Connection, plan: TablePlan, columns: Sequence[Column[Any]]
    ) -> BulkWriter:
        if self.target.db.backend == "postgresql":
            return PostgresCopyWriter(connection, plan.table, columns)
        return CoreInsertWriter(plan.table, columns)

    def _record_batch(
        self,
        connection: Connection,
        step: str,
        page: list[SourceRow],
        readable: list[SourceRow],
        failures: list[RowFailure],
        written: list[SourceRow],
        checksum: int,
    ) -> None:
        """Advance the checkpoint in the batch's own transaction."""
        for row in page:
            if row.values is None:
                self._log_error(step, row.key, row.error or "unreadable")
        for failure in failures:
            self._log_error(step, readable[failure.index].key, failure.error)
        state = self.job["checkpoints"][step]
        state.update(
            after=_key_to_json(page[-1].key),
            rows=state["rows"] + len(written),
            failed=state["failed"] + len(page) - len(written),
            checksum=as_hex(checksum),
        )
        self.job["migrated"][step] = state["rows"]
        self.job["failed"][step] = state["failed"]
        self._run_rows += len(page)
        values = {
            "checkpoints": self.job["checkpoints"],
            "migrated": self.job["migrated"],
            "failed": self.job["failed"],
            "error_log": self.job["error_log"],
            "progress": self._percent(),
        }
        self.job.update(values)
        jobs.save_job(connection, self.job_id, **values)

    def _link(self, plan: TablePlan) -> bool:
        """Fill in the self-referencing columns, now that every row they point at is there."""
        step = plan.link_step
        state = self._checkpoint(step)
        if state["done"]:
            return True
        refs = [plan.table.c[name] for name in plan.self_references]
        reader = TableReader(
            self.source.db, plan, [plan.key, *refs], where=or_(*(c.is_not(None) for c in refs))
        )
        writer = _LinkWriter(plan, refs)
        after = _key_from_json(plan, state["after"])
        self._save(current_table=step)
        while not self.cancel.is_set():
            with self.source.db.read() as connection:
                page = reader.page(connection, after, self.batch_size)
            if not page:
                state["done"] = True
                self._save(checkpoints=self.job["checkpoints"])
                return True
            readable = [row for row in page if row.values is not None]
            rows = [row.values for row in readable]
            with self.target.db.connect(write=True) as connection:
                failures = write_batch(connection, writer, writer, rows)  # type: ignore[arg-type]
                failed = {readable[f.index].key for f in failures}
                written = [row for row in readable if row.key not in failed]
                self._record_batch(connection, step, page, readable, failures, written, 0)
            after = page[-1].key
        return False

    # --- verification and re-embedding ----------------------------------------------------

    def _verify(self) -> Verification:
        tables = {}
        for plan in self.plans:
            self._save(current_table=f"verifying {plan.name}")
            state = self._checkpoint(plan.name)
            with self.source.db.read() as connection:
                source_rows = _count(connection, plan)
            target_rows, target_checksum = table_checksum(self.target, plan)
            skipped = state["failed"]
            equal = target_rows == source_rows - skipped and target_checksum == state["checksum"]
            if not equal:
                self._log_error(plan.name, None, "verification: the target differs from the source")
            tables[plan.name] = TableVerification(
                source_rows=source_rows,
                skipped_rows=skipped,
                target_rows=target_rows,
                source_checksum=state["checksum"],
                target_checksum=target_checksum,
                equal=equal,
            )
        return Verification(passed=all(t.equal for t in tables.values()), tables=tables)

    def _reembed(self) -> None:
        from ctxbase.store import Store

        store = self.target.store
        if store is None:
            if self.target.url is None:
                self._log_error(None, None, "re-embedding needs a target reachable by URL")
                return
            store = Store(
                settings=self.settings.model_copy(update={"database_url": self.target.url})
            )
        try:
            model = store.embeddings.model
            if model is None:
                self._log_error(None, None, "re-embedding needs an embedder (CTXBASE_EMBEDDER)")
                return
            self._save(current_table=f"re-embedding with {model}")
            store.embeddings.reembed(model)
        finally:
            if store is not self.target.store:
                store.close()

    # --- bookkeeping ----------------------------------------------------------------------

    def _checkpoint(self, step: str) -> dict[str, Any]:
        empty = {"after": None, "rows": 0, "failed": 0, "checksum": as_hex(0), "done": False}
        state: dict[str, Any] = self.job["checkpoints"].setdefault(step, empty)
        return state

    def _log_error(self, table: str | None, key: Any, message: str) -> None:
        self.job["error_log"] = [
            *self.job["error_log"],
            {
                "table": table,
                "key": None if key is None else str(key),
                "error": message,
                "at": utcnow().isoformat(),
            },
        ][: jobs.ERROR_LOG_LIMIT]

    def _percent(self) -> float:
        total = sum(self.job["totals"].values())
        done = sum(
            self.job["migrated"].get(p.name, 0) + self.job["failed"].get(p.name, 0)
            for p in self.plans
        )
        return 100.0 if total == 0 else min(100.0, round(100.0 * done / total, 2))

    def _save(self, **values: Any) -> None:
        self.job.update(values)
        with self.target.db.connect(write=True) as connection:
            jobs.save_job(connection, self.job_id, **values)
        self._notify()

    def _finish(self, status: str) -> MigrationReport:
        values: dict[str, Any] = {
            "status": status,
            "finished_at": utcnow(),
            "error_log": self.job["error_log"],
        }
        if status in ("completed", "completed_with_errors"):
            values["progress"] = 100.0
        self._save(**values)
        return self.report()

    def progress(self) -> Progress:
        elapsed = time.monotonic() - self._run_started
        rate = self._run_rows / elapsed if elapsed > 0 and self._run_rows else None
        remaining = (
            sum(self.job["totals"].values())
            - sum(self.job["migrated"].values())
            - sum(self.job["failed"].values())
        )
        return Progress(
            percent=self.job["progress"],
            rows=dict(self.job["migrated"]),
            totals=dict(self.job["totals"]),
            failed=dict(self.job["failed"]),
            current_table=self.job["current_table"],
            rows_per_second=round(rate, 1) if rate else None,
            eta_seconds=round(max(remaining, 0) / rate, 1) if rate else None,
        )

    def report(self) -> MigrationReport:
        return jobs.to_report(self.job, self.progress())

    def _notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.report())


class _LinkWriter:
    """Sets the self-referencing columns of rows already copied (``executemany`` update)."""

    def __init__(self, plan: TablePlan, refs: list[Column[Any]]) -> None:
        self.keys = ["_key", *(f"_{c.key}" for c in refs)]
        values: dict[str, Any] = {c.key: bindparam(f"_{c.key}", type_=c.type) for c in refs}
        # Columns stamped on update (updated_at) keep the value copied from the source.
        values.update({c.key: c for c in plan.table.columns if c.onupdate is not None})
        self.statement = (
            update(plan.table)
            .where(plan.key == bindparam("_key", type_=plan.key.type))
            .values(values)
        )

    def write(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        connection.execute(self.statement, [dict(zip(self.keys, row, strict=True)) for row in rows])


def table_checksum(endpoint: Endpoint, plan: TablePlan, batch_size: int = 5000) -> tuple[int, str]:
    """Rows and checksum of everything a table of ``endpoint`` holds."""
    reader = TableReader(endpoint.db, plan)
    hasher = RowHasher(plan.table, reader.columns)
    rows, checksum, after = 0, 0, None
    while True:
        with endpoint.db.read() as connection:
            page = reader.page(connection, after, batch_size)
        if not page:
            return rows, as_hex(checksum)
        rows += len(page)
        checksum = combine(
            checksum, *(hasher.row_hash(r.values) for r in page if r.values is not None)
        )
        after = page[-1].key


def _require_empty(target: Endpoint, plans: list[TablePlan]) -> None:
    with target.db.read() as connection:
        holding = [p.name for p in plans if connection.execute(select(p.key).limit(1)).first()]
    if holding:
        raise ConflictError(
            f"The target database already holds rows in: {', '.join(holding)}",
            hint="migrate into an empty database (e.g. after `ctxbase db reset`), or resume "
            "a job with --resume",
            details={"tables": holding},
        )


def _count(connection: Connection, plan: TablePlan) -> int:
    return int(connection.execute(select(func.count()).select_from(plan.table)).scalar_one())


def _blanked(values: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    if not positions:
        return values
    row = list(values)
    for position in positions:
        row[position] = None
    return tuple(row)


def _key_to_json(key: Any) -> Any:
    return str(key) if isinstance(key, uuid.UUID) else key


def _key_from_json(plan: TablePlan, value: Any) -> Any:
    if value is None:
        return None
    return uuid.UUID(value) if plan.key.type.python_type is uuid.UUID else value
