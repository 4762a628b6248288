"""The record of a migration job, kept in the *target* database.

Each batch commits its rows and the job's checkpoint in one transaction of the target, so
after a crash the checkpoint says exactly which rows arrived: a resumed job continues after
the last committed key, without duplicating or missing a row. The source and target URLs
are kept encrypted (for ``--resume``) and shown masked.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ctxbase.db.schema import MigrationJob, new_id, table, utcnow
from ctxbase.errors import NotFoundError
from ctxbase.transfer.report import MigrationReport, Progress, Verification

jobs_table = table(MigrationJob)
j = jobs_table.c
#: Entries kept in a job's error log; the counts stay exact beyond it.
ERROR_LOG_LIMIT = 1000


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
