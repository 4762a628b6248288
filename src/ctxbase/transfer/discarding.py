"""Discarding a migration job stopped before its end: its target as it was before.

A job's target was empty in the job's tables when the job was recorded (see
``jobs.record_job``), so everything those tables hold came from the job: emptying them
gives the target back. On PostgreSQL the load had set aside the tables' secondary indexes
and foreign keys; they are put back over the empty tables, which is instant. The job's
record goes last, in the same transaction: a discard that fails leaves the job as it was,
still resumable.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select

from ctxbase.db.database import Database
from ctxbase.errors import ConflictError
from ctxbase.transfer import foreign_keys, indexes
from ctxbase.transfer.jobs import j, jobs_table, load_job
from ctxbase.transfer.tables import plan_tables

#: A job in one of these states wrote everything it was asked to: nothing to discard.
_COMPLETED = ("completed", "completed_with_errors")


def discard_job(db: Database, job_id: uuid.UUID) -> dict[str, int]:
    """Empty job ``job_id``'s tables in ``db``, put back what the load set aside, and
    delete the job's record; the rows removed per table."""
    removed: dict[str, int] = {}
    with db.connect(write=True) as connection:
        job = load_job(connection, job_id)
        if job["status"] in _COMPLETED:
            raise ConflictError(
                f"Migration job {job_id} completed ({job['status']}): nothing to discard",
                hint="to empty the database, use `ctxbase db reset`",
            )
        for plan in reversed(plan_tables(job["tables"])):  # children first
            count = connection.execute(select(func.count()).select_from(plan.table)).scalar()
            connection.execute(plan.table.delete())
            removed[plan.name] = int(count or 0)
        options = job["options"]
        for index in options.get("deferred_indexes") or []:
            indexes.build(connection, index)
        for key in options.get("deferred_foreign_keys") or []:
            foreign_keys.restore(connection, key)
        connection.execute(delete(jobs_table).where(j.id == job_id))
    return removed
