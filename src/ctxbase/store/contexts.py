"""Context units: named, versioned texts; an update adds a version and links the old one.

The latest version of a name is the one with ``superseded_by`` NULL. Adding a name that
exists with identical content returns the stored version (dedupe by content hash);
adding it with other content adds a version.

A new version may carry another name than the one it supersedes (a renamed file:
``update(id, name=…)``, or ``add(name, …, supersedes=id)``), and may supersede two units
at once (a file merged into another: the other name's latest version and the one named
by ``supersedes``). The versions linked by ``superseded_by`` are one unit's *lineage*:
``versions`` lists it and ``delete`` deletes it, whatever names it went by. A version's
number is one more than the highest of the versions it supersedes and of those already
stored under its name, so numbers grow along every lineage, through renames too, and
(name, version) stays unique.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

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
    given,
    page_limit,
    parse,
    uuid_part,
    version_number,
)
from ctxbase.store.embedding import text_hash
from ctxbase.store.references import no_such

contexts_table = table(ContextRow)
x = contexts_table.c
_pages = Keyset("contexts", (uuid_part,))
_CHUNK = 500  # ids per statement when deleting a lineage


class Contexts(Domain):
    """``store.contexts``."""

    def add(
        self,
        name: str,
        content: str,
        *,
        source_type: str = "note",
        metadata: dict[str, Any] | None = None,
        supersedes: uuid.UUID | str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> ContextUnit:
        """Store ``content`` under ``name``: version 1, the same version, or a new one.

        ``supersedes`` names a unit of another name that this one replaces (a renamed or
        merged file): it must be the latest version of its name, and becomes superseded
        by the new unit, which also supersedes ``name``'s own latest version if any."""
        data = parse(ContextIn, given(ContextIn, locals()))
        self._check_text("content", data.content)
        self._check_json("metadata", data.metadata)
        digest = text_hash(data.content)
        vector = self._store.embeddings.vectors_for("context", [data.content])
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            latest = self._latest(connection, project_id, data.name)
            replaced = [latest] if latest is not None else []
            if data.supersedes is not None and (latest is None or data.supersedes != latest.id):
                other = self._superseded(connection, project_id, project, data.supersedes)
                if other.superseded_by is not None:
                    if latest is not None and (other.superseded_by, digest) == (
                        latest.id,
                        latest.content_hash,
                    ):
                        return latest  # the same call again: already done
                    raise self._not_latest(connection, project_id, other)
                replaced.append(other)
            elif latest is not None and latest.content_hash == digest:
                return latest
            return self._insert_version(connection, project_id, data, digest, replaced, vector)

    def update(
        self,
        context_id: uuid.UUID | str,
        *,
        content: str,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> ContextUnit:
        """A new version after ``context_id``, which must be the latest version; under
        ``name`` if given (a rename: when that name has units, its latest version is
        superseded too, a merge)."""
        change = parse(ContextUpdate, given(ContextUpdate, locals()))
        self._check_text("content", change.content)
        self._check_json("metadata", change.metadata)
        vector = self._store.embeddings.vectors_for("context", [change.content])
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            current = self._by_id(connection, project_id, as_uuid(context_id, "context unit"))
            if current.superseded_by is not None:
                raise self._not_latest(connection, project_id, current)
            new_name = change.name or current.name
            new_metadata = current.metadata if change.metadata is None else change.metadata
            digest = text_hash(change.content)
            replaced = [current]
            if new_name == current.name:
                if digest == current.content_hash and new_metadata == current.metadata:
                    return current
            elif (target := self._latest(connection, project_id, new_name)) is not None:
                replaced.append(target)
            data = ContextIn(
                name=new_name,
                content=change.content,
                source_type=current.source_type,
                metadata=new_metadata,
            )
            return self._insert_version(connection, project_id, data, digest, replaced, vector)

    def get(self, context_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> ContextUnit:
        """Any version, by id."""
        with self._db.connect() as connection:
            project_id = self._project_id(connection, project)
            return self._by_id(connection, project_id, as_uuid(context_id, "context unit"))

    def get_latest(self, name: str, *, project: str = DEFAULT_PROJECT) -> ContextUnit:
        """The latest version stored under ``name``. A name whose unit was renamed or
        merged away has none: NotFoundError, naming where its unit went."""
        with self._db.connect() as connection:
            project_id = self._project_id(connection, project)
            latest = self._latest(connection, project_id, name)
            if latest is None:
                raise self._no_latest(connection, project_id, name)
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
        """Every version of the unit, through renames and merges, oldest first."""
        with self._db.connect() as connection:
            project_id = self._project_id(connection, project)
            unit = self._by_id(connection, project_id, as_uuid(context_id, "context unit"))
            rows = connection.execute(
                select(contexts_table)
                .where(x.id.in_(_lineage(unit.id, project_id)))
                .order_by(x.version, x.id)
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
        """Delete every version of the unit, through renames and merges (and their
        embeddings)."""
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            unit = self._by_id(connection, project_id, as_uuid(context_id, "context unit"))
            ids = list(connection.execute(_lineage(unit.id, project_id)).scalars())
            chunks = [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
            for chunk in chunks:  # unlink first: the versions point at each other
                connection.execute(
                    update(contexts_table).where(x.id.in_(chunk)).values(superseded_by=None)
                )
            for chunk in chunks:
                connection.execute(delete(contexts_table).where(x.id.in_(chunk)))

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

    def _superseded(
        self, connection: Connection, project_id: uuid.UUID, project: str, unit_id: uuid.UUID
    ) -> ContextUnit:
        """The unit ``supersedes`` names; refused like a unit that does not exist when it
        is not in this project."""
        row = connection.execute(
            select(contexts_table).where(x.id == unit_id, x.project_id == project_id)
        ).first()
        if row is None:
            raise no_such("supersedes", "context unit", project)
        return ContextUnit.model_validate(row._mapping)

    def _head(
        self, connection: Connection, project_id: uuid.UUID, unit_id: uuid.UUID
    ) -> ContextUnit | None:
        """The latest version of the unit's lineage: its ``superseded_by`` chain's end."""
        ahead = (
            select(x.id, x.superseded_by)
            .where(x.id == unit_id, x.project_id == project_id)
            .cte("ahead", recursive=True)
        )
        ahead = ahead.union(  # (union: ends even on a cycle an import could bring)
            select(x.id, x.superseded_by).join(ahead, x.id == ahead.c.superseded_by)
        )
        head = select(ahead.c.id).where(ahead.c.superseded_by.is_(None))
        row = connection.execute(select(contexts_table).where(x.id.in_(head))).first()
        return ContextUnit.model_validate(row._mapping) if row else None

    def _not_latest(
        self, connection: Connection, project_id: uuid.UUID, unit: ContextUnit
    ) -> ConflictError:
        head = self._head(connection, project_id, unit.id)
        return ConflictError(
            f"Context unit {unit.id} is version {unit.version}, not the latest",
            details={
                "latest_id": str(head.id) if head else None,
                "latest_name": head.name if head else None,
            },
        )

    def _no_latest(self, connection: Connection, project_id: uuid.UUID, name: str) -> Exception:
        """NotFoundError for ``name``, saying where its unit went if it was renamed."""
        last = connection.execute(
            select(x.id)
            .where(x.project_id == project_id, x.name == name)
            .order_by(x.version.desc())
            .limit(1)
        ).scalar()
        head = self._head(connection, project_id, last) if last is not None else None
        if head is None:
            return NotFoundError(f"No context unit named {name!r}")
        return NotFoundError(
            f"No context unit named {name!r}",
            details={"latest_id": str(head.id), "latest_name": head.name},
            hint=f"it was renamed or merged: its latest version is named {head.name!r}",
        )

    def _insert_version(
        self,
        connection: Connection,
        project_id: uuid.UUID,
        data: ContextIn,
        digest: str,
        replaced: Sequence[ContextUnit],
        vector: Any,
    ) -> ContextUnit:
        """Store ``data`` as the version after the ``replaced`` units (the latest of its
        name, and the unit of another name it supersedes)."""
        now = utcnow()
        stored = connection.execute(
            select(func.max(x.version)).where(x.project_id == project_id, x.name == data.name)
        ).scalar()
        row = {
            **data.model_dump(exclude={"supersedes"}),
            "id": new_id(),
            "project_id": project_id,
            "content_hash": digest,
            "version": max([stored or 0, *(unit.version for unit in replaced)]) + 1,
            "superseded_by": None,
            "created_at": now,
            "updated_at": now,
        }
        connection.execute(insert(contexts_table), row)
        embeddings = self._store.embeddings
        embeddings.insert(
            connection, embeddings.rows("context", project_id, [(row["id"], data.content)], vector)
        )
        for previous in replaced:
            done = connection.execute(
                update(contexts_table)
                .where(x.id == previous.id, x.superseded_by.is_(None))
                .values(superseded_by=row["id"], updated_at=now)
            )
            if done.rowcount == 0:  # another writer superseded it since it was read
                raise self._not_latest(connection, project_id, previous)
        return ContextUnit.model_validate(row)


def _lineage(unit_id: uuid.UUID, project_id: uuid.UUID) -> Any:
    """The ids of every version linked to ``unit_id`` by ``superseded_by``, either way: a
    recursive walk of the supersession graph, inside the project."""
    walk = (
        select(x.id, x.superseded_by)
        .where(x.id == unit_id, x.project_id == project_id)
        .cte("lineage", recursive=True)
    )
    step = (
        select(x.id, x.superseded_by)
        .join(walk, or_(x.superseded_by == walk.c.id, x.id == walk.c.superseded_by))
        .where(x.project_id == project_id)
    )
    return select(walk.union(step).c.id)
