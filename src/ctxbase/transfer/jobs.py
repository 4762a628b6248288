"""The record of a migration job, kept in the *target* database.

Each batch commits its rows and the job's checkpoint in one transaction of the target, so
after a crash the checkpoint says exactly which rows arrived: a resumed job continues after
the last committed key, without duplicating or missing a row. The source and target URLs
are kept encrypted (for ``--resume``) and shown masked.

Everything a running job writes about itself goes through a :class:`JobRecord`: a batch's
checkpoint in the batch's own transaction, anything else in one of its own, each followed
by a progress report. While a worker process loads some of the job's tables, each process
writes only its own steps, merged into the record as it stands under its row lock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ctxbase.config import Settings
from ctxbase.db.database import Database
from ctxbase.db.schema import MigrationJob, new_id, table, utcnow
from ctxbase.errors import ConflictError, NotFoundError
from ctxbase.secrets import Secrets
from ctxbase.transfer import foreign_keys, indexes
from ctxbase.transfer.endpoints import Endpoint
from ctxbase.transfer.report import MigrationReport, Progress, Verification
from ctxbase.transfer.tables import TablePlan, count_rows, has_rows, plan_tables
from ctxbase.transfer.writing import RowFailure

jobs_table = table(MigrationJob)
j = jobs_table.c
#: Entries kept in a job's error log; the counts stay exact beyond it.
ERROR_LOG_LIMIT = 1000
DEFAULT_BATCH_SIZE = 2000
ProgressCallback = Callable[[MigrationReport], None]
#: Keys of failed rows kept per table, so verification can leave them out of the source.
FAILED_KEYS_LIMIT = 10_000
#: Columns of the job's record that a worker process writes too, each its own tables'.
_SHARED = ("checkpoints", "migrated", "failed", "error_log")


def create_job(connection: Connection, values: dict[str, Any]) -> uuid.UUID:
    job_id = values.get("id") or new_id()
    connection.execute(
        insert(jobs_table),
        {
            "status": "pending",
            "progress": 0.0,
            "totals": {},
            "migrated": {},
            "failed": {},
            "checkpoints": {},
            "error_log": [],
            "created_at": utcnow(),
            **values,
            "id": job_id,
        },
    )
    return job_id


def record_job(
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
        totals = {p.name: count_rows(connection, p) for p in plans}
    secrets = Secrets(settings)
    names = [p.name for p in plans]
    with target.db.connect(write=True) as connection:
        options: dict[str, Any] = {"batch_size": batch_size, "reembed": reembed}
        if target.db.backend.bulk_loads:  # both back once the rows are in
            # (an empty table keeps them: nothing to load, nothing to build again)
            loaded = [name for name in names if totals[name]]
            options["deferred_indexes"] = indexes.set_aside(connection, loaded)
            options["deferred_foreign_keys"] = foreign_keys.set_aside(connection, loaded)
        return create_job(
            connection,
            {
                "id": job_id,
                "source": source.describe(),
                "target": target.describe(),
                "source_encrypted": secrets.encrypt(source.url) if source.url else None,
                "target_encrypted": secrets.encrypt(target.url) if target.url else None,
                "tables": names,
                "options": options,
                "totals": totals,
            },
        )


def _require_empty(target: Endpoint, plans: list[TablePlan]) -> None:
    with target.db.read() as connection:  # one connection for every table
        holding = [p.name for p in plans if has_rows(connection, p)]
    if holding:
        raise ConflictError(
            f"The target database already holds rows in: {', '.join(holding)}",
            hint="migrate into an empty database (e.g. after `ctxbase db reset`), or resume "
            "a job with --resume",
            details={"tables": holding},
        )


def lock_job(connection: Connection, job_id: uuid.UUID) -> dict[str, Any]:
    """The job's checkpoints, counts and error log, its row locked until the transaction
    ends (two processes loading tables of one job merge their steps into it in turn)."""
    columns = (j.checkpoints, j.migrated, j.failed, j.error_log)
    statement = select(*columns).where(j.id == job_id).with_for_update()
    row = connection.execute(statement).mappings().first()
    if row is None:
        raise NotFoundError(f"No migration job {job_id} in the target database")
    return dict(row)


def load_job(connection: Connection, job_id: uuid.UUID) -> dict[str, Any]:
    row = connection.execute(select(jobs_table).where(j.id == job_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"No migration job {job_id} in the target database")
    return dict(row)


def save_job(connection: Connection, job_id: uuid.UUID, **values: Any) -> None:
    connection.execute(update(jobs_table).where(j.id == job_id).values(**values))


def to_report(row: dict[str, Any], progress: Progress | None = None) -> MigrationReport:
    """The public view of a job row; ``progress`` adds the live rate of a running job."""
    live = progress or Progress(
        percent=row["progress"],
        rows=row["migrated"],
        totals=row["totals"],
        failed=row["failed"],
        current_table=row["current_table"],
    )
    verification = row.get("verification")
    return MigrationReport(
        id=row["id"],
        kind=row.get("kind") or "migration",
        status=row["status"],
        source=row["source"],
        target=row["target"],
        tables=row["tables"],
        options=row["options"],
        progress=live,
        error_log=row["error_log"],
        verification=Verification.model_validate(verification) if verification else None,
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


class JobRecord:
    """Job ``job_id`` as recorded in the target ``db``, and every write to it."""

    def __init__(
        self, db: Database, job_id: uuid.UUID, on_progress: ProgressCallback | None = None
    ) -> None:
        self.db, self.job_id, self.on_progress = db, job_id, on_progress
        with db.connect() as connection:
            self.job = load_job(connection, job_id)
        self.plans = plan_tables(self.job["tables"])
        self._rows_before_run = self._rows_done()
        self._run_started = time.monotonic()
        #: The steps this process writes while another writes the rest of the job (a
        #: worker, or the job's process for a worker); None when it is alone.
        self.mine: frozenset[str] | None = None
        #: Held while the job's options are rewritten (background threads drop from them).
        self._options_lock = threading.Lock()

    # --- checkpoints and the error log ----------------------------------------------------

    def checkpoint(self, step: str) -> dict[str, Any]:
        empty: dict[str, Any] = {
            "after": None,
            "rows": 0,
            "failed": 0,
            "failed_keys": [],
            "done": False,
        }
        state: dict[str, Any] = self.job["checkpoints"].setdefault(step, empty)
        return state

    def log_error(self, table: str | None, key: Any, message: str) -> None:
        self.job["error_log"] = [
            *self.job["error_log"],
            {
                "table": table,
                "key": None if key is None else str(key),
                "error": message,
                "at": utcnow().isoformat(),
            },
        ][:ERROR_LOG_LIMIT]

    def record_failures(self, step: str, failures: list[RowFailure]) -> dict[str, Any]:
        """Log ``failures`` and count them in the step's checkpoint, which is returned."""
        state = self.checkpoint(step)
        for failure in failures:
            self.log_error(step, failure.key, failure.error)
            if len(state["failed_keys"]) < FAILED_KEYS_LIMIT:
                state["failed_keys"].append(key_to_json(failure.key))
        state["failed"] += len(failures)
        return state

    def save_checkpoint(self, connection: Connection, step: str, **more: Any) -> None:
        """Save the step's checkpoint, the counts and the error log, in ``connection``'s
        transaction (the one that wrote what they count)."""
        if step in self.job["totals"]:  # a table, not a link pass
            state = self.job["checkpoints"][step]
            self.job["migrated"][step] = state["rows"]
            self.job["failed"][step] = state["failed"]
        values = {
            "checkpoints": self.job["checkpoints"],
            "migrated": self.job["migrated"],
            "failed": self.job["failed"],
            "error_log": self.job["error_log"],
            **more,
        }
        self.write(connection, values)

    # --- writing ----------------------------------------------------------------------------

    def save(self, **values: Any) -> None:
        with self.db.connect(write=True) as connection:
            self.write(connection, values)
        self.notify()

    def write(self, connection: Connection, values: dict[str, Any]) -> None:
        """Save ``values`` into the job's record, in ``connection``'s transaction. While
        another process writes other steps of the job, this one's steps are merged into the
        record as it stands, under its row lock: each writes only its own."""
        self.job.update(values)
        if self.mine is not None and any(column in values for column in _SHARED):
            self._merge(lock_job(connection, self.job_id), self.mine)
            values = {**values, **{c: self.job[c] for c in _SHARED}}
            if "progress" in values:
                values["progress"] = self.job["progress"] = self.percent()
        save_job(connection, self.job_id, **values)

    def _merge(self, recorded: dict[str, Any], mine: frozenset[str]) -> None:
        """Take the steps not in ``mine`` (checkpoints and counts) from ``recorded``, and
        every error logged there."""
        for column in ("checkpoints", "migrated", "failed"):
            own = {key: value for key, value in self.job[column].items() if key in mine}
            self.job[column] = {**recorded[column], **own}
        logged = list(recorded["error_log"])
        self.job["error_log"] = [
            *logged,
            *(entry for entry in self.job["error_log"] if entry not in logged),
        ][:ERROR_LOG_LIMIT]

    def read_back(self) -> None:
        """The other process's steps as recorded (its batches commit them with its rows)."""
        with self.db.read() as connection:
            recorded = load_job(connection, self.job_id)
        assert self.mine is not None
        self._merge(recorded, self.mine)
        self.job["progress"] = self.percent()

    # --- indexes and foreign keys set aside for the load ------------------------------------

    def deferred(self, option: str, table: str | None) -> list[dict[str, Any]]:
        with self._options_lock:
            items = self.job["options"].get(option) or []
            return [item for item in items if table is None or item["table"] == table]

    def done(self, option: str, item: dict[str, Any]) -> None:
        """Drop ``item``, now in place in the target, from the job's ``option`` list. (In a
        transaction of its own: building it again on resume is harmless.)"""
        with self._options_lock, self.db.connect(write=True) as connection:
            remaining = [x for x in self.job["options"].get(option) or [] if x != item]
            options = {**self.job["options"], option: remaining}
            save_job(connection, self.job_id, options=options)
            self.job["options"] = options

    # --- progress ---------------------------------------------------------------------------

    def percent(self) -> float:
        total = sum(self.job["totals"].values())
        done = sum(
            self.job["migrated"].get(p.name, 0) + self.job["failed"].get(p.name, 0)
            for p in self.plans
        )
        return 100.0 if total == 0 else min(100.0, round(100.0 * done / total, 2))

    def _rows_done(self) -> int:
        return sum(self.job["migrated"].values()) + sum(self.job["failed"].values())

    def progress(self) -> Progress:
        elapsed = time.monotonic() - self._run_started
        run_rows = self._rows_done() - self._rows_before_run
        rate = run_rows / elapsed if elapsed > 0 and run_rows > 0 else None
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
        return to_report(self.job, self.progress())

    def notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.report())


def key_to_json(key: Any) -> Any:
    return str(key) if isinstance(key, uuid.UUID) else key


def key_from_json(plan: TablePlan, value: Any) -> Any:
    if value is None:
        return None
    return uuid.UUID(value) if plan.key.type.python_type is uuid.UUID else value
