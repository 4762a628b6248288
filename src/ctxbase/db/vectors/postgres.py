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
    "install pgvector on the server (Debian/Ubuntu: apt-get install postgresql-<major>-pgvector), "
    "then as a superuser run "
    "`CREATE EXTENSION vector;` in this database"
)


@dataclass(frozen=True)
class PgvectorStatus:
    """What pgvector looks like in one PostgreSQL database."""

    installed: bool  # the extension exists in this database
    available: bool  # the server has the extension's files, so it could be created
    version: str | None = None
    can_create: bool = False  # the current user may create it
    problem: str | None = None  # why it is not enabled, when it is not


def pgvector_status(connection: Connection) -> PgvectorStatus:
    """Inspect pgvector without changing anything."""
    installed = connection.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    ).scalar()
    if installed:
        return PgvectorStatus(installed=True, available=True, version=installed, can_create=True)
    trusted = connection.execute(
        text(
            "SELECT v.trusted FROM pg_available_extensions e JOIN pg_available_extension_versions v"
            " ON v.name = e.name AND v.version = e.default_version WHERE e.name = 'vector'"
        )
    ).scalar()
    if trusted is None:
        return PgvectorStatus(
            installed=False,
            available=False,
            problem="the pgvector extension is not installed on this PostgreSQL server",
        )
    user, superuser, may_create = connection.execute(
        text(
            "SELECT current_user, rolsuper, has_database_privilege(current_database(), 'CREATE')"
            " FROM pg_roles WHERE rolname = current_user"
        )
    ).one()
    can_create = bool(superuser or (trusted and may_create))
    problem = (
        None
        if can_create
        else (f"the database user {user!r} has no permission to create the pgvector extension")
    )
    return PgvectorStatus(installed=False, available=True, can_create=can_create, problem=problem)


def ensure_pgvector(connection: Connection) -> PgvectorStatus:
    """Create the pgvector extension if the server has it and the user may; never raise.

    Runs inside a savepoint so a refusal leaves the caller's transaction usable.
    """
    status = pgvector_status(connection)
    if status.can_create and not status.installed:
        try:
            with connection.begin_nested():
                connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            return pgvector_status(connection)
        except sa_exc.DBAPIError as e:
            status = PgvectorStatus(
                installed=False,
                available=True,
                problem=f"creating the pgvector extension failed: {str(e.orig).strip()}",
            )
    if status.problem:
        log.warning(
            "pgvector unavailable: %s. Consequence: %s. To fix: %s.",
            status.problem,
            PGVECTOR_MISSING_CONSEQUENCES,
            PGVECTOR_INSTALL_HINT,
        )
    return status


def vector_column_is_pgvector(connection: Connection) -> bool:
    """Whether ``embeddings.vector`` is a pgvector column (else it holds float32 bytes)."""
    type_name = connection.execute(
        text(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass('embeddings') AND a.attname = 'vector'"
        )
    ).scalar()
    return bool(type_name and type_name.startswith("vector"))
