"""``check_connection()``: what `ctxbase doctor` and the health endpoint report.

A check never raises: every failure becomes a report with an error code, a message and
a hint. Passwords never appear in a report.

A database a migration is copying into carries a mark until the copy is done: the job's
own record (``migration_jobs``), unfinished and not yet verified. Such a database holds
part of the data (on PostgreSQL without some foreign keys too): it is reported degraded,
and a store refuses to open on it (:func:`require_no_unfinished_migration`) until the job
is resumed to its end or discarded.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, inspect, select

from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.schema import MigrationJob, table
from ctxbase.db.vectors.postgres import (
    PGVECTOR_INSTALL_HINT,
    PGVECTOR_MISSING_CONSEQUENCES,
)
from ctxbase.errors import ConflictError, CtxbaseError

#: The problem code of a database holding an unfinished migration job.
UNFINISHED_MIGRATION = "migration_unfinished"
#: Statuses of a job that may have stopped half-way through its copy.
#: The option marking a server's copy of a job whose record is in another database.
HOME_COPY = "home_copy"
_UNFINISHED_STATUSES = ("pending", "running", "failed", "cancelled")


class PgvectorReport(BaseModel):
    installed: bool
    available: bool
    version: str | None = None
    can_create: bool = False
    problem: str | None = None
    hint: str | None = None


class ProblemReport(BaseModel):
    code: str
    message: str
    hint: str | None = None


class ConnectionReport(BaseModel):
    """The state of one database as ctxbase sees it."""

    status: Literal["ok", "degraded", "error"]
    backend: str
    url: str = Field(description="The database URL with any password masked.")
    database: str | None = None
    host: str | None = None
    port: int | None = None
    server_version: str | None = None
    pgvector: PgvectorReport | None = Field(
        None, description="PostgreSQL only; SQLite always searches vectors itself."
    )
    vector_storage: Literal["pgvector", "bytes"] | None = None
    schema_revision: str | None = None
    head_revision: str
    pending_migrations: list[str] = Field(default_factory=list)
    problems: list[ProblemReport] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "error"


def check_connection(db: Database) -> ConnectionReport:
    """Connect to ``db`` and report on it; never raises."""
    url = db.url
    report = ConnectionReport(
        status="ok",
        backend=db.backend_name,
        url=url.masked(),
        database=url.sqlite_path or (":memory:" if url.in_memory else url.url.database),
        host=url.url.host,
        port=url.url.port or db.backend.default_port,
        head_revision=migrate.head_revision(),
    )
    try:
        _inspect(db, report)
    except CtxbaseError as e:
        report.status = "error"
        report.problems.append(ProblemReport(code=e.code, message=e.message, hint=e.hint))
    return report


def _inspect(db: Database, report: ConnectionReport) -> None:
    with db.connect() as connection:
        server = db.backend.describe(connection)
        unfinished = unfinished_migrations(connection)
    report.server_version = server.server_version
    report.vector_storage = server.vector_storage
    status = server.pgvector
    if status is not None:
        report.pgvector = PgvectorReport(
            **status.__dict__, hint=None if status.installed else PGVECTOR_INSTALL_HINT
        )
    report.schema_revision = migrate.current_revision(db)
    report.pending_migrations = migrate.pending_revisions(db)
    _add_warnings(report)
    for job_id, job_status in unfinished:
        report.status = "degraded"
        report.problems.append(_unfinished_problem(job_id, job_status))


def unfinished_migrations(connection: Connection) -> list[tuple[uuid.UUID, str]]:
    """Id and status of each migration job into this database whose copy has not been
    completed and verified: the database holds part of its data."""
    inspector = inspect(connection)
    if not inspector.has_table("migration_jobs"):
        return []
    jobs = table(MigrationJob)
    query = (
        select(jobs.c.id, jobs.c.status, jobs.c.verification, jobs.c.options)
        .where(jobs.c.status.in_(_UNFINISHED_STATUSES))
        .order_by(jobs.c.created_at)
    )
    if any(column["name"] == "kind" for column in inspector.get_columns("migration_jobs")):
        query = query.where(jobs.c.kind == "migration")  # (a schema before 0009 has none)
    rows = connection.execute(query)
    # A verified job only had re-embedding left: its data is whole. A server's copy of a
    # job recorded in another database (see ``ctxbase.store.jobs``) copied nothing here.
    return [
        (job_id, status)
        for job_id, status, verified, options in rows
        if not verified and not (options or {}).get(HOME_COPY)
    ]


def require_no_unfinished_migration(db: Database) -> None:
    """Raise ConflictError if a migration into ``db`` stopped before its end (the store
    would serve and accept writes over part of the data)."""
    with db.connect() as connection:
        unfinished = unfinished_migrations(connection)
    if unfinished:
        job_id, status = unfinished[0]
        problem = _unfinished_problem(job_id, status)
        raise ConflictError(
            problem.message, hint=problem.hint, details={"job_id": str(job_id), "status": status}
        )


def _unfinished_problem(job_id: uuid.UUID, status: str) -> ProblemReport:
    return ProblemReport(
        code=UNFINISHED_MIGRATION,
        message=f"Migration job {job_id} into this database has not finished ({status}): "
        "it holds part of the data",
        hint=f"resume it with `ctxbase migrate --resume {job_id} --to <this database>`, or "
        f"remove what it copied with `ctxbase migrate --discard {job_id} --to <this database>`",
    )


def _add_warnings(report: ConnectionReport) -> None:
    if report.pending_migrations:
        report.status = "degraded"
        report.problems.append(
            ProblemReport(
                code="schema_out_of_date",
                message=f"{len(report.pending_migrations)} schema migration(s) pending",
                hint="run `ctxbase db upgrade`",
            )
        )
    pgvector = report.pgvector
    if pgvector is not None and not pgvector.installed:
        report.status = "degraded"
        report.problems.append(
            ProblemReport(
                code="pgvector_missing",
                message=f"{pgvector.problem}; {PGVECTOR_MISSING_CONSEQUENCES}",
                hint=PGVECTOR_INSTALL_HINT,
            )
        )
    elif pgvector is not None and report.vector_storage == "bytes":
        report.status = "degraded"
        report.problems.append(
            ProblemReport(
                code="pgvector_unused",
                message="pgvector is installed but embeddings were created as bytes before it was",
                hint="move the data to a new database with `ctxbase migrate` to use pgvector",
            )
        )
