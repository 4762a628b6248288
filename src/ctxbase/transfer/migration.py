"""Copying tables between two databases: batches, checkpoints, an error log, verification.

A job copies its tables parents first, each in primary-key order, ``batch_size`` rows at a
time. Every batch is one transaction on the target holding the rows *and* the job's
checkpoint (last key, rows, failed keys), so a job stopped at any moment (crash, SIGKILL,
cancel) resumes after its last committed batch. A row that cannot be read or written goes
to the error log; the rest continue. The job ends with a verification: per table, the
source's rows (less the failed ones) against the target's, by count and checksum.

On a PostgreSQL target, the tables are loaded without their secondary indexes and foreign
keys (see ``indexes`` and ``foreign_keys``). Each loaded table is finished in the
background while the next one loads: its foreign keys added back (every row checked in one
pass), its indexes built, its checksum computed by the server. A table whose rows point at
nothing is left for after the load, when its orphans are logged and removed. There, too,
the embeddings table is loaded by a second process beside the others (see ``worker``).

The parts of a job, one module each: ``jobs`` records it (its plan, checkpoints, counts and
progress), ``copying`` copies a table page by page, ``finishing`` puts indexes and foreign
keys back, ``verify`` compares source and target; this module runs them in turn.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ctxbase.config import Settings
from ctxbase.db.schema import utcnow
from ctxbase.errors import CtxbaseError, DatabaseError
from ctxbase.transfer.copying import TableCopy
from ctxbase.transfer.endpoints import Endpoint
from ctxbase.transfer.finishing import BackgroundFinishing, Finishing
from ctxbase.transfer.jobs import DEFAULT_BATCH_SIZE, JobRecord, ProgressCallback
from ctxbase.transfer.report import MigrationReport
from ctxbase.transfer.tables import steps
from ctxbase.transfer.verify import verify_job
from ctxbase.transfer.worker import WORKER_TABLES, CancelFlag, Worker, start_worker

log = logging.getLogger("ctxbase.transfer")

#: How often the job's process reads the worker's progress while it waits for it.
_FOLLOW_SECONDS = 0.2


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
        cancel: CancelFlag | None = None,
    ) -> None:
        self.source, self.target, self.job_id = source, target, job_id
        self.settings = settings
        self.cancel = cancel or threading.Event()
        self.record = JobRecord(target.db, job_id, on_progress)
        self.plans = self.record.plans
        batch_size = int(self.record.job["options"].get("batch_size", DEFAULT_BATCH_SIZE))
        self.copying = TableCopy(
            source, target, self.record, batch_size=batch_size, cancel=self.cancel
        )
        self.finishing = Finishing(source, target, self.record, self.cancel)

    @property
    def on_progress(self) -> ProgressCallback | None:
        return self.record.on_progress

    @on_progress.setter
    def on_progress(self, callback: ProgressCallback | None) -> None:
        self.record.on_progress = callback

    def report(self) -> MigrationReport:
        return self.record.report()

    def run(self) -> MigrationReport:
        """Copy what is left, verify, and return the final report. A failure during the
        copy does not raise: the job records it as ``failed``, ready to be resumed."""
        record = self.record
        started = record.job["started_at"] or utcnow()
        record.save(status="running", started_at=started, finished_at=None)  # also resumed
        try:
            with BackgroundFinishing(self.finishing) as background:
                loaded = self._load(background)
            if not loaded:
                return self._finish("cancelled")
            for plan in self.plans:  # what the background left: tables with orphans
                self.finishing.restore_foreign_keys(plan, remove_orphans=True)
            self.finishing.build_indexes()
            verification = verify_job(self.source.db, self.target.db, record, background.checksums)
            record.save(verification=verification.model_dump(mode="json"), current_table=None)
            if record.job["options"].get("reembed"):
                self._reembed()
        except CtxbaseError as error:
            log.error("Migration %s failed: %s", self.job_id, error)
            record.log_error(None, None, f"{error.code}: {error}")
            return self._finish("failed")
        failed = bool(record.job["error_log"]) or not verification.passed
        return self._finish("completed_with_errors" if failed else "completed")

    def _load(self, background: BackgroundFinishing) -> bool:
        """Load every table (some by a worker process meanwhile), each finished in the
        background once loaded; False when cancelled."""
        with self._start_worker() as worker:
            theirs = [p for p in self.plans if worker is not None and p.name in worker.tables]
            for plan in self.plans:
                if plan in theirs:
                    continue  # loaded by the worker meanwhile
                # A self-reference points into its own table: linked once it is loaded.
                copied = self.copying.copy(plan)
                if not copied or (plan.self_references and not self.copying.link(plan)):
                    return False
                background.loaded(plan)
            if worker is not None and not self._follow(worker):
                return False
            for plan in theirs:  # now loaded too
                background.loaded(plan)
            background.wait()
            return True

    def _reembed(self) -> None:
        from ctxbase.store import Store

        store = self.target.store
        if store is None:
            if self.target.url is None:
                self.record.log_error(None, None, "re-embedding needs a target reachable by URL")
                return
            store = Store(
                settings=self.settings.model_copy(update={"database_url": self.target.url})
            )
        try:
            model = store.embeddings.model
            if model is None:
                self.record.log_error(
                    None, None, "re-embedding needs an embedder (CTXBASE_EMBEDDER)"
                )
                return
            self.record.save(current_table=f"re-embedding with {model}")
            store.embeddings.reembed(model)
        finally:
            if store is not self.target.store:
                store.close()

    def _finish(self, status: str) -> MigrationReport:
        if status in ("cancelled", "failed"):  # leave the target usable meanwhile
            try:
                self.finishing.build_indexes()
                for plan in self.plans:  # parents first; none after one that cannot
                    if not self.finishing.restore_foreign_keys(plan, remove_orphans=False):
                        break
            except CtxbaseError as error:
                log.warning("Indexes of migration %s not built yet: %s", self.job_id, error)
        values: dict[str, Any] = {
            "status": status,
            "finished_at": utcnow(),
            "error_log": self.record.job["error_log"],
        }
        if status in ("completed", "completed_with_errors"):
            values["progress"] = 100.0
        self.record.save(**values)
        return self.report()

    # --- a worker process ----------------------------------------------------------------

    @contextmanager
    def _start_worker(self) -> Iterator[Worker | None]:
        """A worker loading the embeddings table beside this process, when the job can
        have one: a PostgreSQL target, both ends reachable by URL, Linux (where the worker
        dies with this process), and rows left to load. Stopped when the block ends."""
        tables = [
            plan.name
            for plan in self.plans
            if plan.name in WORKER_TABLES and not self.record.checkpoint(plan.name)["done"]
        ]
        if (
            not tables
            or not self.target.db.backend.bulk_loads
            or self.source.url is None
            or self.target.url is None
            or sys.platform != "linux"
            or not any(self.record.job["totals"].get(name) for name in tables)
        ):
            yield None
            return
        self.record.mine = frozenset(s for s in steps(self.plans) if s not in tables)
        try:
            worker = start_worker(self, tables)
        except OSError as error:  # no interpreter to start: this process loads them all
            log.warning("Migration %s loads every table itself: %s", self.job_id, error)
            self.record.mine = None
            yield None
            return
        try:
            yield worker
        finally:
            worker.stop()

    def _follow(self, worker: Worker) -> bool:
        """Wait for the worker's end, passing its progress on meanwhile; then take its
        tables back. False if it was cancelled; raises if it failed."""
        while not worker.wait(_FOLLOW_SECONDS):
            if self.cancel.is_set():
                worker.cancel()
                break
            self.record.read_back()
            self.record.notify()
        result = worker.result()
        self.record.read_back()
        self.record.mine = None
        if result["status"] == "failed":
            raise DatabaseError(f"Loading {', '.join(worker.tables)}: {result.get('error')}")
        return result["status"] == "loaded"

    def load_as_worker(self, tables: list[str]) -> bool:
        """Load ``tables`` as the job's worker process; False if cancelled. Writes only
        their steps into the job's record (the job's process writes the rest meanwhile)."""
        plans = [plan for plan in self.plans if plan.name in tables]
        self.record.mine = frozenset(steps(plans))
        return all(self.copying.copy(plan) for plan in plans)
