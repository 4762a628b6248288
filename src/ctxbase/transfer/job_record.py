"""A migration job's record as this process knows it: checkpoints, counts, the error log.

Everything a job writes about itself goes through a :class:`JobRecord`: a batch's
checkpoint in the batch's own transaction (:meth:`JobRecord.write`), anything else in one
of its own (:meth:`JobRecord.save`), each followed by a progress report. While a worker
process loads some of the job's tables, each process writes only its own steps, merged
into the record as it stands under its row lock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from ctxbase.db.database import Database
from ctxbase.db.schema import utcnow
from ctxbase.transfer import jobs
from ctxbase.transfer.report import MigrationReport, Progress
from ctxbase.transfer.tables import TablePlan, plan_tables
from ctxbase.transfer.writing import RowFailure

ProgressCallback = Callable[[MigrationReport], None]
#: Keys of failed rows kept per table, so verification can leave them out of the source.
FAILED_KEYS_LIMIT = 10_000
#: Columns of the job's record that a worker process writes too, each its own tables'.
_SHARED = ("checkpoints", "migrated", "failed", "error_log")


class JobRecord:
    """Job ``job_id`` as recorded in the target ``db``, and every write to it."""

    def __init__(
        self, db: Database, job_id: uuid.UUID, on_progress: ProgressCallback | None = None
    ) -> None:
        self.db, self.job_id, self.on_progress = db, job_id, on_progress
        with db.connect() as connection:
            self.job = jobs.load_job(connection, job_id)
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
        ][: jobs.ERROR_LOG_LIMIT]

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
            self._merge(jobs.lock_job(connection, self.job_id), self.mine)
            values = {**values, **{c: self.job[c] for c in _SHARED}}
            if "progress" in values:
                values["progress"] = self.job["progress"] = self.percent()
        jobs.save_job(connection, self.job_id, **values)

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
        ][: jobs.ERROR_LOG_LIMIT]

    def read_back(self) -> None:
        """The other process's steps as recorded (its batches commit them with its rows)."""
        with self.db.read() as connection:
            recorded = jobs.load_job(connection, self.job_id)
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
            jobs.save_job(connection, self.job_id, options=options)
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
        return jobs.to_report(self.job, self.progress())

    def notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.report())


def key_to_json(key: Any) -> Any:
    return str(key) if isinstance(key, uuid.UUID) else key


def key_from_json(plan: TablePlan, value: Any) -> Any:
    if value is None:
        return None
    return uuid.UUID(value) if plan.key.type.python_type is uuid.UUID else value
