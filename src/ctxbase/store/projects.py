"""Projects: every record lives in one, addressed by its slug within the tenant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ctxbase.db.database import Database
from ctxbase.db.schema import new_id, utcnow
from ctxbase.errors import ConflictError, NotFoundError
from ctxbase.records import Page, Project, ProjectIn, ProjectPatch
from ctxbase.store.base import (
    DEFAULT_PAGE,
    DEFAULT_PROJECT,
    DEFAULT_TENANT,
    Domain,
    Keyset,
    page_limit,
    parse,
    projects_table,
    tenants_table,
    text_part,
)

p = projects_table.c
_pages = Keyset("projects", (text_part(64),))  # by slug


class Projects(Domain):
    """``store.projects``: create, read, update and delete projects."""

    def create(
        self, slug: str, *, name: str | None = None, settings: dict[str, Any] | None = None
    ) -> Project:
        data = parse(ProjectIn, {"slug": slug, "name": name, "settings": settings or {}})
        self._check_json("settings", data.settings)
        now = utcnow()
        with self._db.connect(write=True) as connection:
            tenant_id = self._tenant_id(connection)
            exists = connection.execute(
                select(p.id).where(p.tenant_id == tenant_id, p.slug == data.slug)
            ).first()
            if exists:
                raise ConflictError(f"Project {data.slug!r} already exists")
            row = {
                "id": new_id(),
                "tenant_id": tenant_id,
                "slug": data.slug,
                "name": data.name or data.slug,
                "settings": data.settings,
                "created_at": now,
                "updated_at": now,
            }
            connection.execute(insert(projects_table), row)
        return Project.model_validate(row)

    def get(self, slug: str) -> Project:
        with self._db.connect() as connection:
            project_id = self._project_id(connection, slug)
            row = connection.execute(select(projects_table).where(p.id == project_id)).one()
        return Project.model_validate(row._mapping)

    def list(self, *, limit: int = DEFAULT_PAGE, cursor: str | None = None) -> Page[Project]:
        page_limit(limit)
        scope = self._store.scope
        within = (scope.tenant,)
        after = _pages.decode(cursor, within)[0] if cursor else None
        query = (
            select(projects_table)
            .join(tenants_table, tenants_table.c.id == p.tenant_id)
            .where(tenants_table.c.slug == scope.tenant, tenants_table.c.is_active.is_(True))
            .order_by(p.slug)
            .limit(limit + 1)
        )
        if scope.projects is not None:
            query = query.where(p.slug.in_(sorted(scope.projects)))
        if after is not None:
            query = query.where(p.slug > after)
        with self._db.connect() as connection:
            items = [Project.model_validate(r._mapping) for r in connection.execute(query)]
        return _pages.page(items, limit, lambda item: [item.slug], within)

    def update(
        self, slug: str, *, name: str | None = None, settings: dict[str, Any] | None = None
    ) -> Project:
        patch = parse(ProjectPatch, {"name": name, "settings": settings})
        self._check_json("settings", patch.settings)
        changes = patch.model_dump(exclude_none=True)
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, slug)
            connection.execute(
                update(projects_table)
                .where(p.id == project_id)
                .values(**changes, updated_at=utcnow())
            )
            row = connection.execute(select(projects_table).where(p.id == project_id)).one()
        return Project.model_validate(row._mapping)

    def delete(self, slug: str) -> None:
        """Delete the project and everything in it."""
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, slug)
            connection.execute(delete(projects_table).where(p.id == project_id))

    def _tenant_id(self, connection: Connection) -> Any:
        tenant = connection.execute(
            select(tenants_table.c.id).where(
                tenants_table.c.slug == self._store.scope.tenant,
                tenants_table.c.is_active.is_(True),
            )
        ).scalar()
        if tenant is None:
            raise NotFoundError(f"No tenant {self._store.scope.tenant!r}")
        return tenant


def ensure_defaults(db: Database) -> None:
    """Create tenant ``default`` and its project ``default`` when missing; safe to race."""
    with db.connect() as connection:
        if _default_project_exists(connection):
            return
    try:
        with db.connect(write=True) as connection:
            if _default_project_exists(connection):
                return
            now = utcnow()
            tenant_id = connection.execute(
                select(tenants_table.c.id).where(tenants_table.c.slug == DEFAULT_TENANT)
            ).scalar()
            if tenant_id is None:
                tenant_id = new_id()
                connection.execute(
                    insert(tenants_table),
                    {
                        "id": tenant_id,
                        "slug": DEFAULT_TENANT,
                        "name": "Default",
                        "plan": "free",
                        "quotas": {},
                        "settings": {},
                        "is_active": True,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            connection.execute(
                insert(projects_table),
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "slug": DEFAULT_PROJECT,
                    "name": "Default",
                    "settings": {},
                    "created_at": now,
                    "updated_at": now,
                },
            )
    except ConflictError:
        pass  # another process created them first


def _default_project_exists(connection: Connection) -> bool:
    found = connection.execute(
        select(p.id)
        .join(tenants_table, tenants_table.c.id == p.tenant_id)
        .where(tenants_table.c.slug == DEFAULT_TENANT, p.slug == DEFAULT_PROJECT)
    ).first()
    return found is not None
