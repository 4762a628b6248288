"""``check_connection()``: what `ctxbase doctor` and the health endpoint report.

A check never raises: every failure becomes a report with an error code, a message and
a hint. Passwords never appear in a report.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.vectors.postgres import (
    PGVECTOR_INSTALL_HINT,
    PGVECTOR_MISSING_CONSEQUENCES,
)
from ctxbase.errors import CtxbaseError


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
