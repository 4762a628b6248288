"""Context units: named, versioned texts; an update adds a version and links the old one.

The latest version of a name is the one with ``superseded_by`` NULL. Adding a name that
exists with identical content returns the stored version (dedupe by content hash);
adding it with other content adds a version.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ctxbase.db.schema import ContextUnit as ContextRow
from ctxbase.db.schema import new_id, table, utcnow
from ctxbase.errors import ConflictError, NotFoundError
from ctxbase.records import ContextIn, ContextUnit, ContextUpdate, Page
from ctxbase.store.base import (
    DEFAULT_PAGE,
    DEFAULT_PROJECT,
    Domain,
    Keyset,
    as_uuid,
    page_limit,
    parse,
    uuid_part,
    version_number,
)
from ctxbase.store.embedding import text_hash

contexts_table = table(ContextRow)
x = contexts_table.c
_pages = Keyset("contexts", (uuid_part,))


class Contexts(Domain):
    """``store.contexts``."""

    def add(
        self,
        name: str,
        content: str,
        *,
        source_type: str = "note",
        metadata: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> ContextUnit:
        """Store ``content`` under ``name``: version 1, the same version, or a new one."""
        data = parse(
            ContextIn,
            {
                "name": name,
                "content": content,
                "source_type": source_type,
                "metadata": metadata or {},
            },
        )
        self._check_text("content", data.content)
        self._check_json("metadata", data.metadata)
        digest = text_hash(data.content)
        vector = self._store.embeddings.vectors_for("context", [data.content])
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            latest = self._latest(connection, project_id, data.name)
            if latest is not None and latest.content_hash == digest:
                return latest
            return self._insert_version(connection, project_id, data, digest, latest, vector)

    def update(
        self,
        context_id: uuid.UUID | str,
        *,
        content: str,
        metadata: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> ContextUnit:
        """A new version after ``context_id``, which must be the latest version."""
        change = parse(ContextUpdate, {"content": content, "metadata": metadata})
        self._check_text("content", change.content)
        self._check_json("metadata", change.metadata)
        vector = self._store.embeddings.vectors_for("context", [change.content])
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            current = self._by_id(connection, project_id, as_uuid(context_id, "context unit"))
            if current.superseded_by is not None:
                latest = self._latest(connection, project_id, current.name)
                raise ConflictError(
                    f"Context unit {current.id} is version {current.version}, not the latest",
                    details={"latest_id": str(latest.id) if latest else None},
                )
            new_metadata = current.metadata if change.metadata is None else change.metadata
            digest = text_hash(change.content)
            if digest == current.content_hash and new_metadata == current.metadata:
                return current
            data = ContextIn(
                name=current.name,
                content=change.content,
                source_type=current.source_type,
                metadata=new_metadata,
            )
            return self._insert_version(connection, project_id, data, digest, current, vector)

    def get(self, context_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> ContextUnit:
        """Any version, by id."""
        with self._db.connect() as connection:
            project_id = self._project_id(connection, project)
            return self._by_id(connection, project_id, as_uuid(context_id, "context unit"))

    def get_latest(self, name: str, *, project: str = DEFAULT_PROJECT) -> ContextUnit:
        with self._db.connect() as connection:
            latest = self._latest(connection, self._project_id(connection, project), name)
        if latest is None:
            raise NotFoundError(f"No context unit named {name!r}")
        return latest

    def get_version(
        self, name: str, version: int, *, project: str = DEFAULT_PROJECT
    ) -> ContextUnit:
        version = version_number("version", version)
        with self._db.connect() as connection:
            row = connection.execute(
                select(contexts_table).where(
                    x.project_id == self._project_id(connection, project),
                    x.name == name,
                    x.version == version,
                )
            ).first()
        if row is None:
            raise NotFoundError(f"No version {version} of context unit {name!r}")
        return ContextUnit.model_validate(row._mapping)

    def versions(
        self, context_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> list[ContextUnit]:
        """Every version of the unit's name, oldest first."""
        with self._db.connect() as connection:
            project_id = self._project_id(connection, project)
            unit = self._by_id(connection, project_id, as_uuid(context_id, "context unit"))
            rows = connection.execute(
                select(contexts_table)
                .where(x.project_id == project_id, x.name == unit.name)
                .order_by(x.version)
            )
            return [ContextUnit.model_validate(r._mapping) for r in rows]

    def list(
        self,
        *,
        project: str = DEFAULT_PROJECT,
        source_type: str | None = None,
        name: str | None = None,
        include_superseded: bool = False,
        version: int | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[ContextUnit]:
        """Latest versions (all with ``include_superseded`` or a ``version``), newest first."""
        page_limit(limit)
        if version is not None:
            version_number("version", version)
        within = self._list_of(project)
        last = _pages.decode(cursor, within)[0] if cursor else None
        with self._db.connect() as connection:
            query = select(contexts_table).where(
                x.project_id == self._project_id(connection, project)
            )
            if version is not None:
                query = query.where(x.version == version)
            elif not include_superseded:
                query = query.where(x.superseded_by.is_(None))
            if source_type is not None:
                query = query.where(x.source_type == source_type)
            if name is not None:
                query = query.where(x.name == name)
            if last is not None:
                query = query.where(x.id < last)
            rows = connection.execute(query.order_by(x.id.desc()).limit(limit + 1))
            items = [ContextUnit.model_validate(r._mapping) for r in rows]
        return _pages.page(items, limit, lambda item: [item.id], within)

    def delete(self, context_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> None:
        """Delete every version of the unit's name (and their embeddings)."""
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            unit = self._by_id(connection, project_id, as_uuid(context_id, "context unit"))
            # Unlink first: the versions point at each other.
            same_name = (x.project_id == project_id) & (x.name == unit.name)
            connection.execute(update(contexts_table).where(same_name).values(superseded_by=None))
            connection.execute(delete(contexts_table).where(same_name))

    # --- helpers ---

    def _by_id(
        self, connection: Connection, project_id: uuid.UUID, context_id: uuid.UUID
    ) -> ContextUnit:
        row = connection.execute(
            select(contexts_table).where(x.id == context_id, x.project_id == project_id)
        ).first()
        if row is None:
            raise NotFoundError(f"No context unit {context_id}")
        return ContextUnit.model_validate(row._mapping)

    def _latest(
        self, connection: Connection, project_id: uuid.UUID, name: str
    ) -> ContextUnit | None:
        row = connection.execute(
            select(contexts_table).where(
                x.project_id == project_id, x.name == name, x.superseded_by.is_(None)
            )
        ).first()
        return ContextUnit.model_validate(row._mapping) if row else None

    def _insert_version(
        self,
        connection: Connection,
        project_id: uuid.UUID,
        data: ContextIn,
        digest: str,
        previous: ContextUnit | None,
        vector: Any,
    ) -> ContextUnit:
        now = utcnow()
        row = {
            **data.model_dump(),
            "id": new_id(),
            "project_id": project_id,
            "content_hash": digest,
            "version": previous.version + 1 if previous else 1,
            "superseded_by": None,
            "created_at": now,
            "updated_at": now,
        }
        connection.execute(insert(contexts_table), row)
        embeddings = self._store.embeddings
        embeddings.insert(
            connection, embeddings.rows("context", project_id, [(row["id"], data.content)], vector)
        )
        if previous is not None:
            connection.execute(
                update(contexts_table)
                .where(x.id == previous.id)
                .values(superseded_by=row["id"], updated_at=now)
            )
        return ContextUnit.model_validate(row)
