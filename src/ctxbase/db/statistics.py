"""Rows and size of a ctxbase database, per table and per project (``ctxbase stats``).

Sizes come from the database: on PostgreSQL each table with its indexes and TOAST; on
SQLite the pages of each table, its indexes and its full-text index. A project's size is
an estimate, its share of each table's size by rows; a table that belongs to no project
(tenants, keys, audit, settings, jobs) is counted for the database only. Nothing is
written: the figures are read in one pass of counting queries.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Table, func, select

from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.schema import metadata


class TableSize(BaseModel):
    table: str
    rows: int
    bytes: int | None = Field(description="With its indexes; None if the database cannot tell.")


class ProjectSize(BaseModel):
    tenant: str
    project: str
    rows: dict[str, int] = Field(description="Rows per table holding the project's data.")
    total_rows: int
    bytes: int | None = Field(
        description="Estimate: the project's share, by rows, of each table's size."
    )


class DatabaseStatistics(BaseModel):
    database: str = Field(description="The database URL with any password masked.")
    backend: str
    schema_revision: str | None
    tables: list[TableSize]
    projects: list[ProjectSize]
    total_rows: int
    total_bytes: int | None


def database_statistics(db: Database) -> DatabaseStatistics:
    """Rows and bytes of every ctxbase table of ``db``, and of each project."""
    revision = migrate.current_revision(db)
    with db.read() as connection:
        present = set(connection.dialect.get_table_names(connection))
        tables = {name: t for name, t in metadata.tables.items() if name in present}
        sizes = db.backend.table_sizes(connection)
        counts = {name: _count(connection, t) for name, t in tables.items()}
        per_project = _rows_per_project(connection, tables)
        projects = _projects(connection) if "projects" in tables else []
    table_sizes = [TableSize(table=n, rows=counts[n], bytes=sizes.get(n)) for n in tables]
    known = [t.bytes for t in table_sizes if t.bytes is not None]
    return DatabaseStatistics(
        database=db.url.masked(),
        backend=db.backend_name,
        schema_revision=revision,
        tables=table_sizes,
        projects=[
            _project_size(tenant, slug, per_project.get(project_id, {}), counts, sizes)
            for project_id, tenant, slug in projects
        ],
        total_rows=sum(counts.values()),
        total_bytes=sum(known) if known else None,
    )


def _count(connection: Connection, table: Table) -> int:
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _projects(connection: Connection) -> list[tuple[uuid.UUID, str, str]]:
    projects, tenants = metadata.tables["projects"], metadata.tables["tenants"]
    rows = connection.execute(
        select(projects.c.id, tenants.c.slug, projects.c.slug)
        .join(tenants, tenants.c.id == projects.c.tenant_id)
        .order_by(tenants.c.slug, projects.c.slug)
    )
    return [(project_id, tenant, slug) for project_id, tenant, slug in rows]


def _rows_per_project(
    connection: Connection, tables: dict[str, Table]
) -> dict[uuid.UUID, dict[str, int]]:
    """Rows per project and table: by the table's ``project_id``, else its parent's (the
    changes of a message, the dead letters of a subscription)."""
    found: dict[uuid.UUID, dict[str, int]] = {}
    for name, table in tables.items():
        query = _grouped_by_project(table, tables)
        if query is None:
            continue
        for project_id, rows in connection.execute(query):
            if project_id is not None:
                found.setdefault(project_id, {})[name] = int(rows)
    return found


def _grouped_by_project(table: Table, tables: dict[str, Table]) -> Any:
    if "project_id" in table.c:
        return select(table.c.project_id, func.count()).group_by(table.c.project_id)
    for fk in table.foreign_keys:
        parent = fk.column.table
        if parent is not table and parent.name in tables and "project_id" in parent.c:
            joined = table.join(parent, fk.parent == fk.column)
            return (
                select(parent.c.project_id, func.count())
                .select_from(joined)
                .group_by(parent.c.project_id)
            )
    return None


def _project_size(
    tenant: str,
    slug: str,
    rows: dict[str, int],
    table_rows: dict[str, int],
    table_bytes: dict[str, int],
) -> ProjectSize:
    share = [
        table_bytes[name] * count / table_rows[name]
        for name, count in rows.items()
        if table_rows.get(name) and name in table_bytes
    ]
    return ProjectSize(
        tenant=tenant,
        project=slug,
        rows=rows,
        total_rows=sum(rows.values()),
        bytes=round(sum(share)) if table_bytes else None,
    )
