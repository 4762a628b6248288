"""Jobs run by the server — migrations and re-embedding — each in a thread, each a record.

Every job is recorded in the server's home database (the one it started on, where its
database configurations live), so it is listed and read after a restart, by every server
process on that database, under one id: ``GET /jobs``, ``/jobs/{id}``, ``/jobs/{id}/stream``
(and ``/migrations…`` for migrations). A migration keeps its own record, with its
checkpoints, in its target (see ``transfer.jobs``); the home record is a copy of it
(``home_copy`` in its options), written at most once a second and at every change of
status. A re-embedding is recorded in the home database only.

While a migration writes into a registered database configuration, that configuration
shows status ``migrating``; it returns to its previous status when the job ends.

A process keeps its own running jobs in memory too: their live progress (rate, time left)
and a way to cancel a migration. Jobs still running when the server stops are cancelled
(a migration resumes with ``POST /migrations/{id}/resume`` or ``ctxbase migrate
--resume``; a re-embedding started again skips what is done). A job whose server process
died without a word is marked cancelled when a server next starts on the same host.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ctxbase.db.schema import new_id, utcnow
from ctxbase.embeddings import Embedder
from ctxbase.errors import ConflictError, CtxbaseError
from ctxbase.records import Page
from ctxbase.store import Store
from ctxbase.store.jobs import (
    HOME_COPY,
    interrupted,
    load_job,
    record_job,
    save_job,
    unfinished_jobs,
)
from ctxbase.transfer import PreparedMigration
from ctxbase.transfer.endpoints import Endpoint
from ctxbase.transfer.report import MigrationReport, Progress

log = logging.getLogger("ctxbase.server")

#: How often a running job's home record is rewritten at most (a change of status is
#: always written at once).
SAVE_EVERY_SECONDS = 1.0
#: The option naming the process running a job: ``{"host": …, "pid": …}``.
RUNNER = "runner"
#: The option naming the configurations a migration writes into, and their status before.
TARGET_CONFIGS = "target_configs"


def this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


class HomeRecord:
    """A job's record in the home database: written from its reports, at most once a
    second while its status stays the same. ``own`` is False when the job's own record is
    already there (a migration into the home database): nothing is written then.
    ``recorded`` is True when a copy of an earlier run of the job is there (a resumed
    job): it is written over."""

    def __init__(
        self, home: Store, options: dict[str, Any], *, own: bool, recorded: bool = False
    ) -> None:
        self.db, self.options, self.own = home.db, options, own  # own: write a record
        self.recorded = recorded
        self._saved_at = 0.0
        self._saved_status: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def of_migration(cls, home: Store, job_id: uuid.UUID, options: dict[str, Any]) -> HomeRecord:
        """The home record of migration ``job_id``: a new copy, the copy an earlier run of
        it left, or none to write when its own record is in the home database."""
        found = load_job(home.db, job_id)
        if found is None:
            return cls(home, options, own=True)
        return cls(home, options, own=bool((found["options"] or {}).get(HOME_COPY)), recorded=True)

    def create(self, report: MigrationReport) -> None:
        if self.own:
            (save_job if self.recorded else record_job)(self.db, report, self.options)
            self._saved_at, self._saved_status = time.monotonic(), report.status

    def save(self, report: MigrationReport) -> None:
        if not self.own:
            return
        with self._lock:
            now = time.monotonic()
            changed = report.status != self._saved_status or report.finished
            if not changed and now - self._saved_at < SAVE_EVERY_SECONDS:
                return
            try:
                save_job(self.db, report, self.options)
            except CtxbaseError as error:  # the job goes on; its next report tries again
                log.warning("Could not record job %s in the home database: %s", report.id, error)
                return
            self._saved_at, self._saved_status = now, report.status


@dataclass
class RunningJob:
    """A job of this process: its latest report, for polls and streams."""

    report: MigrationReport
    record: HomeRecord
    cancel: threading.Event | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)
    version: int = 0
    thread: threading.Thread | None = None

    def update(self, report: MigrationReport) -> None:
        with self.changed:
            self.report = report
            self.version += 1
            self.changed.notify_all()
        self.record.save(report)


class JobRunner:
    """The jobs one server process runs."""

    def __init__(self) -> None:
        self._jobs: dict[uuid.UUID, RunningJob] = {}
        self._lock = threading.Lock()
        self._reembedding = threading.Lock()  # held from the check to the start
        #: Held by a resume from its checks to its start: one job is never resumed twice
        #: at once by this process.
        self.resuming = threading.Lock()

    # --- migrations ---------------------------------------------------------------------------

    def start_migration(
        self,
        prepared: PreparedMigration,
        cancel: threading.Event,
        home: Store,
        *,
        target_configs: list[tuple[uuid.UUID, str]],
    ) -> RunningJob:
        """Run a prepared migration in a thread. ``target_configs``: the configurations it
        writes into and their status before, which they get back when it ends."""
        report = prepared.migration.report()
        options = {
            HOME_COPY: True,
            RUNNER: this_process(),
            TARGET_CONFIGS: [{"id": str(c), "previous_status": s} for c, s in target_configs],
        }
        record = HomeRecord.of_migration(home, report.id, options)
        record.create(report)
        job = RunningJob(report, record, cancel)
        restored = threading.Event()

        def restore_configs() -> None:
            if not restored.is_set():
                restored.set()
                _restore_configs(home, target_configs)

        def on_progress(progress_report: MigrationReport) -> None:
            # The migration reports its own end: the configurations get their status back
            # before that report is seen, so whoever sees the job ended sees them restored.
            if progress_report.finished:
                restore_configs()
            job.update(progress_report)

        prepared.migration.on_progress = on_progress

        def run() -> None:
            try:
                final = prepared.run()
            except Exception as error:  # run() reports its own failures; this is a bug
                log.exception("Migration job %s failed", report.id)
                final = _failed(job.report, error)
            finally:
                restore_configs()
            job.update(final)

        self._start(job, run, f"ctxbase-migration-{report.id}")
        return job

    # --- re-embedding -------------------------------------------------------------------------

    def start_reembed(
        self,
        store: Store,
        home: Store,
        embedder: Embedder,
        *,
        batch_size: int,
        drop_old: bool,
    ) -> RunningJob:
        """Re-embed ``store`` with ``embedder`` in a thread, recorded in ``home``; one at a
        time per process (ConflictError while one runs)."""
        with self._reembedding:
            if any(j.report.kind == "reembed" and not j.report.finished for j in self.all()):
                raise ConflictError("A re-embedding job is already running")
            kinds = list(store.settings.embed_on_write)
            totals = store.embeddings.pending(kinds, model=embedder.name)
            described = _describe(store)
            report = MigrationReport(
                id=new_id(),
                kind="reembed",
                status="running",
                source={**described, "model": store.embeddings.model},
                target={**described, "model": embedder.name},
                tables=kinds,
                options={"model": embedder.name, "batch_size": batch_size, "drop_old": drop_old},
                progress=Progress(totals=totals, rows={kind: 0 for kind in kinds}),
                created_at=utcnow(),
                started_at=utcnow(),
            )
            record = HomeRecord(home, {RUNNER: this_process()}, own=True)
            record.create(report)
            job = RunningJob(report, record)
            total = sum(totals.values())

            def advance(kind: str, count: int) -> None:
                rows = dict(job.report.progress.rows)
                rows[kind] = rows.get(kind, 0) + count
                done = sum(rows.values())
                percent = 100.0 if total == 0 else min(100.0, round(100.0 * done / total, 2))
                progress = job.report.progress.model_copy(
                    update={"rows": rows, "percent": percent, "current_table": kind}
                )
                job.update(job.report.model_copy(update={"progress": progress}))

            def run() -> None:
                try:
                    store.embeddings.reembed(
                        embedder, batch_size=batch_size, drop_old=drop_old, progress=advance
                    )
                except Exception as error:
                    log.exception("Re-embedding with %s failed", embedder.name)
                    job.update(_failed(job.report, error))
                    return
                progress = job.report.progress.model_copy(
                    update={"percent": 100.0, "current_table": None}
                )
                done = {"status": "completed", "progress": progress, "finished_at": utcnow()}
                job.update(job.report.model_copy(update=done))

            self._start(job, run, "ctxbase-reembed")
            return job

    # --- this process's jobs --------------------------------------------------------------------

    def _start(self, job: RunningJob, target: Callable[[], None], name: str) -> None:
        job.thread = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:
            self._jobs[job.report.id] = job
        job.thread.start()

    def get(self, job_id: uuid.UUID) -> RunningJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[RunningJob]:
        with self._lock:
            return list(self._jobs.values())

    def stop(self, timeout: float = 60) -> None:
        """Cancel every running migration and wait for each job to record its end (server
        shutdown); a re-embedding is waited for."""
        for job in self.all():
            if job.cancel is not None:
                job.cancel.set()
        for job in self.all():
            if job.thread is not None:
                job.thread.join(timeout=timeout)


# --- reading, whichever process runs a job ------------------------------------------------


def job_report(runner: JobRunner, home: Store, job_id: uuid.UUID) -> MigrationReport:
    """A job's latest report: live if this process runs it, else its home record."""
    running = runner.get(job_id)
    return running.report if running is not None else home.jobs.get(job_id)


def job_page(runner: JobRunner, home: Store, page: Page[MigrationReport]) -> Page[MigrationReport]:
    """``page`` with the jobs this process runs shown live."""
    items = [job_report(runner, home, i.id) if runner.get(i.id) else i for i in page.items]
    return Page[MigrationReport](items=items, next_cursor=page.next_cursor)


# --- jobs whose process died ----------------------------------------------------------------


def interrupt_dead_jobs(home: Store) -> list[uuid.UUID]:
    """Mark cancelled the unfinished jobs recorded by a server process of this host that is
    gone (a crash, a kill), giving their configurations their status back. Jobs of other
    hosts, and of processes still alive, are left alone."""
    here = socket.gethostname()
    stopped = []
    for row in unfinished_jobs(home.db):
        options = row["options"] or {}
        runner = options.get(RUNNER) or {}
        if runner.get("host") != here or _alive(runner.get("pid")):
            continue
        hint = (
            f"resume it (POST /migrations/{row['id']}/resume, or `ctxbase migrate --resume`)"
            if row["kind"] == "migration"
            else "start it again: it skips what is done"
        )
        reason = f"the server process running it (pid {runner.get('pid')}) stopped; {hint}"
        save_job(home.db, interrupted(row, reason), options)
        configs = options.get(TARGET_CONFIGS) or []
        _restore_configs(home, [(uuid.UUID(c["id"]), c["previous_status"]) for c in configs])
        stopped.append(row["id"])
    return stopped


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _restore_configs(home: Store, configs: list[tuple[uuid.UUID, str]]) -> None:
    for config_id, previous in configs:
        try:
            home.databases.unmark_migrating(config_id, previous)
        except CtxbaseError as error:
            log.warning("Could not give configuration %s its status back: %s", config_id, error)


def _failed(report: MigrationReport, error: BaseException) -> MigrationReport:
    entry = {"table": None, "key": None, "error": str(error), "at": utcnow().isoformat()}
    return report.model_copy(
        update={
            "status": "failed",
            "finished_at": utcnow(),
            "error_log": [*report.error_log, entry],
        }
    )


def _describe(store: Store) -> dict[str, Any]:
    """Where the store's data is, for people (never a connection string)."""
    return Endpoint(store.db, None, owned=False).describe()


def report_json(report: MigrationReport) -> Any:
    return report.model_dump(mode="json")
