"""pgvector on PostgreSQL: is it there, can it be enabled, how vectors are stored."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

log = logging.getLogger("ctxbase.pgvector")

PGVECTOR_MISSING_CONSEQUENCES = (
    "vector search on PostgreSQL runs as exact search in Python instead of an HNSW index, "
    "and embeddings are stored as bytes"
)
PGVECTOR_INSTALL_HINT = (
    "install pgvector on the server (Debian/Ubuntu: apt-get install postgresql-<major>-pgvector; "
    "see https://github.com/pgvector/pgvector#installation), then as a superuser run "
    "`CREATE EXTENSION vector;` in this database"
)


@dataclass(frozen=True)
class PgvectorStatus:
    """What pgvector looks like in one PostgreSQL database."""

    installed: bool  # the extension exists in this database
    available: bool  # the server has the extension's files, so it could be created
    version: str | None = None
    problem: str | None = None  # why it could not be enabled, when it could not


def pgvector_status(connection: Connection) -> PgvectorStatus:
    """Inspect pgvector without changing anything."""
    installed = connection.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    ).scalar()
    if installed:
        return PgvectorStatus(installed=True, available=True, version=installed)
    available = connection.execute(
        text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
    ).scalar()
    return PgvectorStatus(installed=False, available=available is not None)


def ensure_pgvector(connection: Connection) -> PgvectorStatus:
    """Create the pgvector extension if the server has it and the user may; never raise.

    Runs inside a savepoint so a refusal leaves the caller's transaction usable.
    """
    status = pgvector_status(connection)
    if status.installed:
        return status
    if not status.available:
        problem = "the pgvector extension is not installed on this PostgreSQL server"
    else:
        try:
            with connection.begin_nested():
                connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            return pgvector_status(connection)
        except sa_exc.DBAPIError as e:
            problem = f"could not create the pgvector extension: {str(e.orig).strip()}"
    log.warning("pgvector unavailable: %s. Consequence: %s. To fix: %s.",
                problem, PGVECTOR_MISSING_CONSEQUENCES, PGVECTOR_INSTALL_HINT)
    return PgvectorStatus(installed=False, available=status.available, problem=problem)


def vector_column_is_pgvector(connection: Connection) -> bool:
    """Whether ``embeddings.vector`` is a pgvector column (else it holds float32 bytes)."""
    type_name = connection.execute(
        text(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass('embeddings') AND a.attname = 'vector'"
        )
    ).scalar()
    return bool(type_name and type_name.startswith("vector"))
