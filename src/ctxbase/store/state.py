"""Agent state: namespaced JSON values with compare-and-set on a version, and TTL.

Writes are single statements (an upsert, or an UPDATE guarded by the expected version),
so concurrent writers on PostgreSQL never both succeed against one version. An expired
entry counts as absent; its version numbering continues when it is written again, so a
version a client holds is never reused.

An entry may be owned by a conversation (``owner_conversation_id``) and is then deleted
with it. A write sets the whole entry, its owner like its value and expiry: writing
without an owner leaves the entry unowned.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select, update

from ctxbase.db.schema import StateEntry as StateRow
from ctxbase.db.schema import new_id, table, utcnow
from ctxbase.errors import InvalidInputError, NotFoundError, VersionConflictError
from ctxbase.records import INT32_MAX, Page, StateEntry, StateIn
from ctxbase.store.base import (
    DEFAULT_PAGE,
    DEFAULT_PROJECT,
    Domain,
    Keyset,
    as_uuid,
    page_limit,
    parse,
    text_part,
)
from ctxbase.store.references import check_conversation

state_table = table(StateRow)
s = state_table.c
_SEGMENT = re.compile(r"^[A-Za-z0-9_.:@+=-]+$")
_UNIQUE = ["project_id", "namespace", "key"]
_pages = Keyset("state", (text_part(500), text_part(500)))  # by namespace, key


def check_namespace(namespace: str) -> str:
    """``a/b/c`` style: segments of letters, digits and ``_.:@+=-``; ``""`` is the root."""
    namespace = namespace.strip("/")
    if len(namespace) > 500 or any(
        not _SEGMENT.match(p) for p in namespace.split("/") if namespace
    ):
        raise InvalidInputError(
            f"Invalid namespace {namespace!r}",
            hint="use segments of letters, digits and _.:@+=- separated by /",
        )
    return namespace


def check_key(key: str) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= 500 or not _SEGMENT.match(key):
        raise InvalidInputError(
            f"Invalid state key {key!r}", hint="use 1-500 letters, digits and _.:@+=-"
        )
    return key


def check_expected_version(expected_version: int | None) -> int | None:
    """A version to compare with: 0 to the largest a version column holds. A larger one
    cannot be a version this store returned, so it is bad input, not a conflict."""
    if expected_version is not None and (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or not 0 <= expected_version <= INT32_MAX
    ):
        raise InvalidInputError(
            f"expected_version must be an integer from 0 to {INT32_MAX}",
            details=[{"location": ["expected_version"], "message": "out of range"}],
        )
    return expected_version


def _alive(now: datetime) -> Any:
    return or_(s.expires_at.is_(None), s.expires_at > now)


class State(Domain):
    """``store.state``."""

    def get(self, key: str, *, namespace: str = "", project: str = DEFAULT_PROJECT) -> StateEntry:
        namespace, key = check_namespace(namespace), check_key(key)
        with self._db.connect() as connection:
            row = connection.execute(
                select(state_table).where(
                    self._where(connection, project, namespace, key), _alive(utcnow())
                )
            ).first()
        if row is None:
            raise NotFoundError(f"No state {namespace + '/' if namespace else ''}{key}")
        return StateEntry.model_validate(row._mapping)

    def put(
        self,
        key: str,
        value: Any,
        *,
        namespace: str = "",
        expected_version: int | None = None,
        ttl_seconds: int | None = None,
        owner_conversation_id: uuid.UUID | str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> StateEntry:
        """Write ``value``. ``expected_version``: N = only if the entry is at version N,
        0 = only if there is no entry; None = unconditionally. With
        ``owner_conversation_id`` the entry is deleted with that conversation."""
        namespace, key = check_namespace(namespace), check_key(key)
        data = parse(
            StateIn,
            {
                "value": value,
                "ttl_seconds": ttl_seconds,
                "owner_conversation_id": owner_conversation_id,
            },
        )
        self._check_json("value", data.value)
        expected_version = check_expected_version(expected_version)
        now = utcnow()
        expires = now + timedelta(seconds=data.ttl_seconds) if data.ttl_seconds else None
        owner = data.owner_conversation_id
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            check_conversation(connection, project_id, project, "owner_conversation_id", owner)
            if expected_version:
                entry = [s.project_id == project_id, s.namespace == namespace, s.key == key]
                self._db.backend.lock_for_compare_and_set(connection, state_table, entry)
                row = connection.execute(
                    update(state_table)
                    .where(*entry, s.version == expected_version, _alive(now))
                    .values(
                        value=data.value,
                        version=s.version + 1,
                        expires_at=expires,
                        owner_conversation_id=owner,
                        updated_at=now,
                    )
                    .returning(*state_table.c)
                ).first()
            else:
                row = self._upsert(
                    connection,
                    project_id,
                    namespace,
                    key,
                    data.value,
                    expires,
                    owner,
                    now,
                    only_if_absent=expected_version == 0,
                )
            if row is None:
                raise self._conflict(connection, project_id, namespace, key, expected_version, now)
        return StateEntry.model_validate(row._mapping)

    def delete(
        self,
        key: str,
        *,
        namespace: str = "",
        expected_version: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> None:
        namespace, key = check_namespace(namespace), check_key(key)
        expected_version = check_expected_version(expected_version)
        now = utcnow()
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            condition = and_(
                s.project_id == project_id, s.namespace == namespace, s.key == key, _alive(now)
            )
            if expected_version is not None:
                condition = and_(condition, s.version == expected_version)
            done = connection.execute(delete(state_table).where(condition))
            if done.rowcount == 0:
                if expected_version is None:
                    raise NotFoundError(f"No state {namespace + '/' if namespace else ''}{key}")
                raise self._conflict(connection, project_id, namespace, key, expected_version, now)

    def list(
        self,
        *,
        namespace: str = "",
        owner_conversation_id: uuid.UUID | str | None = None,
        project: str = DEFAULT_PROJECT,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[StateEntry]:
        """Entries in ``namespace`` and below it, ordered by namespace then key; only those
        ``owner_conversation_id`` owns when it is given."""
        page_limit(limit)
        namespace = check_namespace(namespace)
        within = self._list_of(project)
        last = _pages.decode(cursor, within) if cursor else None
        with self._db.connect() as connection:
            query = select(state_table).where(
                s.project_id == self._project_id(connection, project), _alive(utcnow())
            )
            if namespace:
                below = namespace.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                query = query.where(
                    or_(s.namespace == namespace, s.namespace.like(below + "/%", escape="\\"))
                )
            if owner_conversation_id is not None:
                owner = as_uuid(owner_conversation_id, "conversation")
                query = query.where(s.owner_conversation_id == owner)
            if last is not None:
                last_namespace, last_key = last
                query = query.where(
                    or_(
                        s.namespace > last_namespace,
                        and_(s.namespace == last_namespace, s.key > last_key),
                    )
                )
            rows = connection.execute(query.order_by(s.namespace, s.key).limit(limit + 1))
            items = [StateEntry.model_validate(r._mapping) for r in rows]
        return _pages.page(items, limit, lambda item: [item.namespace, item.key], within)

    # --- helpers ---

    def _where(self, connection: Connection, project: str, namespace: str, key: str) -> Any:
        return and_(
            s.project_id == self._project_id(connection, project),
            s.namespace == namespace,
            s.key == key,
        )

    def _upsert(
        self,
        connection: Connection,
        project_id: uuid.UUID,
        namespace: str,
        key: str,
        value: Any,
        expires: datetime | None,
        owner: uuid.UUID | None,
        now: datetime,
        *,
        only_if_absent: bool,
    ) -> Any:
        statement = self._db.backend.insert(state_table).values(
            id=new_id(),
            project_id=project_id,
            namespace=namespace,
            key=key,
            value=value,
            version=1,
            expires_at=expires,
            owner_conversation_id=owner,
            created_at=now,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=_UNIQUE,
            set_={
                "value": statement.excluded.value,
                "version": s.version + 1,
                "expires_at": statement.excluded.expires_at,
                "owner_conversation_id": statement.excluded.owner_conversation_id,
                "updated_at": now,
            },
            # "only if absent": an expired entry counts as absent and may be replaced
            where=(s.expires_at <= now) if only_if_absent else None,
        )
        return connection.execute(statement.returning(*state_table.c)).first()

    def _conflict(
        self,
        connection: Connection,
        project_id: uuid.UUID,
        namespace: str,
        key: str,
        expected: int | None,
        now: datetime,
    ) -> VersionConflictError:
        current = connection.execute(
            select(s.version).where(
                s.project_id == project_id, s.namespace == namespace, s.key == key, _alive(now)
            )
        ).scalar()
        return VersionConflictError(
            f"State {namespace + '/' if namespace else ''}{key} is at version {current or 'none'},"
            f" not {expected}",
            details={"expected_version": expected, "current_version": current},
        )


def prune_expired_state(connection: Connection) -> int:
    done = connection.execute(delete(state_table).where(s.expires_at <= utcnow()))
    return int(done.rowcount)
