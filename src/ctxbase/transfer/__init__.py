"""Moving a store between databases: migration jobs, export/import, backup/restore.

from ctxbase import transfer
report = transfer.migrate("sqlite:///./dev.db", "postgresql://app@db/ctxbase")
assert report.verification.passed
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

from ctxbase.config import Settings
from ctxbase.db.diagnostics import require_no_unfinished_migration
from ctxbase.db.migrate import ensure_schema
from ctxbase.errors import ConflictError, InvalidInputError
from ctxbase.secrets import Secrets
from ctxbase.transfer import jobs
from ctxbase.transfer.discarding import discard_job
from ctxbase.transfer.endpoints import Endpoint, EndpointSpec, open_endpoint, require_head
from ctxbase.transfer.jobs import DEFAULT_BATCH_SIZE, ProgressCallback, record_job
from ctxbase.transfer.migration import Migration
from ctxbase.transfer.report import MigrationReport, Progress, Verification
from ctxbase.transfer.tables import data_tables, plan_tables


def migrate(
    source: EndpointSpec,
    target: EndpointSpec,
    *,
    tables: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    reembed: bool = False,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    job_id: uuid.UUID | None = None,
) -> MigrationReport:
    """Copy ``tables`` (default: all data) from ``source`` into the empty ``target``.

    ``source`` and ``target`` are URLs, open Stores or Databases. The target's schema is
    brought to head first. Returns the job's final report, verification included; a job
    that fails part-way reports ``failed`` and can be resumed with :func:`resume`.
    """
    return prepare_migration(
        source,
        target,
        tables=tables,
        batch_size=batch_size,
        reembed=reembed,
        settings=settings,
        on_progress=on_progress,
        cancel=cancel,
        job_id=job_id,
    ).run()


class PreparedMigration:
    """A job recorded and checked, ready to :meth:`run` (in this thread or another)."""

    def __init__(self, migration: Migration, endpoints: list[Endpoint]) -> None:
        self.migration = migration
        self._endpoints = endpoints

    @property
    def job_id(self) -> uuid.UUID:
        return self.migration.job_id

    def run(self) -> MigrationReport:
        """Copy, verify, report; the endpoints opened for the job are closed afterwards."""
        try:
            return self.migration.run()
        finally:
            self.close()

    def close(self) -> None:
        for endpoint in self._endpoints:
            endpoint.close()


def prepare_migration(
    source: EndpointSpec,
    target: EndpointSpec,
    *,
    tables: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    reembed: bool = False,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    job_id: uuid.UUID | None = None,
) -> PreparedMigration:
    """Check both databases and record a pending job in the target; copy nothing yet.

    Bad input (unknown tables, a target holding data, a source at another schema) raises
    here, before anything is written."""
    if batch_size < 1:
        raise InvalidInputError("batch_size must be at least 1")
    plan_tables(tables)  # unknown tables fail here, before anything is opened or written
    settings = settings or Settings.from_values()
    endpoints: list[Endpoint] = []
    try:
        source_end = open_endpoint(source, settings, role="source")
        endpoints.append(source_end)
        require_head(source_end, "source")  # before the target is opened (and created)
        require_no_unfinished_migration(source_end.db)  # never copy part of the data on
        target_end = open_endpoint(target, settings, role="target", create=True)
        endpoints.append(target_end)
        ensure_schema(target_end.db)  # to head: an empty database gets the whole schema
        # A job stopped in it may hold foreign keys and indexes set aside, and its discard
        # would empty the new job's tables: that job is resumed or discarded first.
        require_no_unfinished_migration(target_end.db)
        job = record_job(
            source_end,
            target_end,
            tables=tables,
            batch_size=batch_size,
            reembed=reembed,
            settings=settings,
            job_id=job_id,
        )
        migration = Migration(
            source_end, target_end, job, settings=settings, on_progress=on_progress, cancel=cancel
        )
    except BaseException:
        for endpoint in endpoints:
            endpoint.close()
        raise
    return PreparedMigration(migration, endpoints)


def resume(
    job_id: uuid.UUID | str,
    target: EndpointSpec,
    *,
    source: EndpointSpec | None = None,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> MigrationReport:
    """Continue job ``job_id`` recorded in ``target`` after its last committed batch.

    The source defaults to the one the job was started with."""
    return prepare_resume(
        job_id, target, source=source, settings=settings, on_progress=on_progress, cancel=cancel
    ).run()


def prepare_resume(
    job_id: uuid.UUID | str,
    target: EndpointSpec,
    *,
    source: EndpointSpec | None = None,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> PreparedMigration:
    """Open both databases of job ``job_id`` and check it can go on; copy nothing yet.

    A job that finished is a ConflictError, a source that cannot be reopened (it was in
    memory) an InvalidInputError, both raised here before anything is written."""
    settings = settings or Settings.from_values()
    job_uuid = _job_uuid(job_id)
    endpoints: list[Endpoint] = []
    try:
        target_end = open_endpoint(target, settings, role="target")
        endpoints.append(target_end)
        require_head(target_end, "target")
        with target_end.db.connect() as connection:
            job = jobs.load_job(connection, job_uuid)
        if job["status"] in ("completed", "completed_with_errors"):
            raise ConflictError(f"Migration job {job_uuid} already finished ({job['status']})")
        if source is None:
            if job["source_encrypted"] is None:
                raise InvalidInputError(
                    "The job's source was in memory and cannot be reopened; pass the source"
                )
            source = Secrets(settings).decrypt(job["source_encrypted"])
        source_end = open_endpoint(source, settings, role="source")
        endpoints.insert(0, source_end)  # closed first, as prepare_migration's
        require_head(source_end, "source")
        migration = Migration(
            source_end,
            target_end,
            job_uuid,
            settings=settings,
            on_progress=on_progress,
            cancel=cancel,
        )
        # Pending again, as a new job is once prepared: it no longer reads as ended.
        migration.record.save(status="pending", finished_at=None)
    except BaseException:
        for endpoint in endpoints:
            endpoint.close()
        raise
    return PreparedMigration(migration, endpoints)


def discard(
    job_id: uuid.UUID | str, target: EndpointSpec, *, settings: Settings | None = None
) -> dict[str, int]:
    """Remove what job ``job_id``, stopped before its end, copied into ``target``, and the
    job's record with it (the mark that keeps stores from opening a half-copied database).

    The job's tables are emptied, and on PostgreSQL the indexes and foreign keys set aside
    for the load are put back, in one transaction. Returns the rows removed per table.
    Only for a job no process runs any more; a completed job is refused."""
    target_end = open_endpoint(target, settings or Settings.from_values(), role="target")
    try:
        require_head(target_end, "target")
        return discard_job(target_end.db, _job_uuid(job_id))
    finally:
        target_end.close()


def job_report(
    job_id: uuid.UUID | str, target: EndpointSpec, *, settings: Settings | None = None
) -> MigrationReport:
    """The report of job ``job_id`` as recorded in ``target``."""
    target_end = open_endpoint(target, settings or Settings.from_values(), role="target")
    try:
        with target_end.db.connect() as connection:
            return jobs.to_report(jobs.load_job(connection, _job_uuid(job_id)))
    finally:
        target_end.close()


def _job_uuid(job_id: uuid.UUID | str) -> uuid.UUID:
    if isinstance(job_id, uuid.UUID):
        return job_id
    try:
        return uuid.UUID(job_id)
    except ValueError:
        raise InvalidInputError(f"Not a job id: {job_id!r}") from None


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MigrationReport",
    "PreparedMigration",
    "Progress",
    "Verification",
    "data_tables",
    "discard",
    "job_report",
    "migrate",
    "prepare_migration",
    "prepare_resume",
    "resume",
]
