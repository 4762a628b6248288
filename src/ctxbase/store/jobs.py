"""``store.jobs``: the records of long jobs kept in this database, newest first.

Two kinds share the ``migration_jobs`` table:

- ``migration``: a copy between two databases. Its own record, with its checkpoints, is
  in its *target* (see :mod:`ctxbase.transfer.jobs`). A server that starts a migration
  also keeps a copy of that record in its home database (the one it started on), marked
  ``home_copy`` in its options, so that its jobs are listed after a restart wherever
  they copy to.
- ``reembed``: a server's re-embedding run, recorded in its home database.

Reading them is server administration (the operator's unlimited admin keys, and the
library). The server writes them through the functions below, not through the Store.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select, update

from ctxbase.db.database import Database
from ctxbase.db.diagnostics import HOME_COPY
from ctxbase.db.schema import MigrationJob, table, utcnow
from ctxbase.errors import NotFoundError, PermissionDeniedError
from ctxbase.records import Input, Page
from ctxbase.store.base import (
    DEFAULT_PAGE,
    Domain,
    Keyset,
    as_uuid,
    page_limit,
    parse,
    uuid_part,
)
from ctxbase.transfer.jobs import ERROR_LOG_LIMIT, to_report
from ctxbase.transfer.report import JobKind, JobStatus, MigrationReport

jobs_table = table(MigrationJob)
j = jobs_table.c
_pages = Keyset("jobs", (uuid_part,))  # by id, newest first
UNFINISHED = ("pending", "running")

__all__ = ["HOME_COPY", "Jobs", "load_job", "record_job", "save_job"]


class _Filters(Input):
    kind: JobKind | None = None
    status: JobStatus | None = None


class Jobs(Domain):
    """``store.jobs``: migration and re-embedding jobs recorded in this database."""

    def list(
        self,
        *,
        kind: JobKind | None = None,
        status: JobStatus | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[MigrationReport]:
        """Jobs, newest first; ``kind`` (migration, reembed) and ``status`` narrow it."""
        self._require_server_admin()
        page_limit(limit)
        parse(_Filters, {"kind": kind, "status": status})
        within = (kind or "", status or "")
        query = select(jobs_table).order_by(j.id.desc()).limit(limit + 1)
        if kind is not None:
            query = query.where(j.kind == kind)
        if status is not None:
            query = query.where(j.status == status)
        if cursor:
            query = query.where(j.id < _pages.decode(cursor, within)[0])
        with self._db.connect() as connection:
            items = [to_report(dict(row)) for row in connection.execute(query).mappings()]
        return _pages.page(items, limit, lambda item: [item.id], within)

    def get(self, job_id: uuid.UUID | str) -> MigrationReport:
        """One job: status, progress, error log, verification."""
        self._require_server_admin()
        row = load_job(self._db, as_uuid(job_id, "job"))
        if row is None:
            raise NotFoundError(f"No job {job_id}")
        return to_report(row)

    def _require_server_admin(self) -> None:
        if not self._store.scope.server_admin:
            raise PermissionDeniedError("Only the operator's admin keys read jobs")


# --- written by the server -----------------------------------------------------------------


def load_job(db: Database, job_id: uuid.UUID) -> dict[str, Any] | None:
    with db.connect() as connection:
        row = connection.execute(select(jobs_table).where(j.id == job_id)).mappings().first()
    return dict(row) if row is not None else None


def record_job(db: Database, report: MigrationReport, options: dict[str, Any]) -> None:
    """Insert a job's record from its report, ``options`` added to the report's own."""
    with db.connect(write=True) as connection:
        values = _values(report, options)
        connection.execute(
            insert(jobs_table).values(id=report.id, created_at=report.created_at, **values)
        )


def save_job(db: Database, report: MigrationReport, options: dict[str, Any]) -> None:
    """Write a job's report over its record."""
    with db.connect(write=True) as connection:
        connection.execute(
            update(jobs_table).where(j.id == report.id).values(**_values(report, options))
        )


def _values(report: MigrationReport, options: dict[str, Any]) -> dict[str, Any]:
    progress = report.progress
    verification = report.verification
    return {
        "kind": report.kind,
        "source": report.source,
        "target": report.target,
        "tables": report.tables,
        "options": {**report.options, **options},
        "status": report.status,
        "progress": min(max(progress.percent, 0.0), 100.0),
        "totals": progress.totals,
        "migrated": progress.rows,
        "failed": progress.failed,
        "current_table": progress.current_table,
        "error_log": report.error_log[:ERROR_LOG_LIMIT],
        "verification": verification.model_dump(mode="json") if verification else None,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
    }


def unfinished_jobs(db: Database) -> list[dict[str, Any]]:
    """Records of jobs still pending or running (the server checks which are alive)."""
    with db.connect() as connection:
        rows = connection.execute(select(jobs_table).where(j.status.in_(UNFINISHED)))
        return [dict(row) for row in rows.mappings()]


def interrupted(row: dict[str, Any], reason: str) -> MigrationReport:
    """The report of a job that stopped without saying so: cancelled, and why."""
    report = to_report(row)
    entry = {"table": None, "key": None, "error": reason, "at": utcnow().isoformat()}
    return report.model_copy(
        update={
            "status": "cancelled",
            "finished_at": utcnow(),
            "error_log": [*report.error_log, entry][:ERROR_LOG_LIMIT],
        }
    )
