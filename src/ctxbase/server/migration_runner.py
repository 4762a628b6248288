"""Migration jobs run by the server, each in a thread, with live progress for the API.

Each job's record and checkpoints live in its target database (see ``transfer.jobs``);
this registry holds the jobs this process started, their latest report, and a way to
cancel them. Jobs still running when the server stops are cancelled; they can be resumed
with ``ctxbase migrate --resume``.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from ctxbase.errors import NotFoundError
from ctxbase.transfer import PreparedMigration
from ctxbase.transfer.report import MigrationReport


@dataclass
class RunningJob:
    prepared: PreparedMigration
    cancel: threading.Event
    report: MigrationReport
    changed: threading.Condition = field(default_factory=threading.Condition)
    version: int = 0
    thread: threading.Thread | None = None

    def update(self, report: MigrationReport) -> None:
        with self.changed:
            self.report = report
            self.version += 1
            self.changed.notify_all()


class MigrationRunner:
    """The jobs of one server process."""

    def __init__(self) -> None:
        self._jobs: dict[uuid.UUID, RunningJob] = {}
        self._lock = threading.Lock()

    def start(self, prepared: PreparedMigration, cancel: threading.Event) -> RunningJob:
        job = RunningJob(prepared, cancel, prepared.migration.report())
        prepared.migration.on_progress = job.update
        job.thread = threading.Thread(
            target=self._run, args=(job,), name=f"ctxbase-migration-{prepared.job_id}", daemon=True
        )
        with self._lock:
            self._jobs[prepared.job_id] = job
        job.thread.start()
        return job

    def _run(self, job: RunningJob) -> None:
        job.update(job.prepared.run())

    def get(self, job_id: uuid.UUID) -> RunningJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"No migration job {job_id} on this server")
        return job

    def all(self) -> list[RunningJob]:
        with self._lock:
            return list(self._jobs.values())

    def stop(self, timeout: float = 60) -> None:
        """Cancel every running job and wait for it to record that (server shutdown)."""
        for job in self.all():
            job.cancel.set()
        for job in self.all():
            if job.thread is not None:
                job.thread.join(timeout=timeout)


def report_json(report: MigrationReport) -> Any:
    return report.model_dump(mode="json")
