"""What every domain API of the Store shares: scope, project lookup, limits, pages."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import Connection, Table, bindparam, delete, insert, select, true, update

from ctxbase.db.schema import Project as ProjectRow
from ctxbase.db.schema import Tenant as TenantRow
from ctxbase.db.schema import new_id, table
from ctxbase.errors import (
    InvalidCursorError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
)
from ctxbase.records import INT32_MAX, Page, json_size, storable_text

if TYPE_CHECKING:
    from ctxbase.store.store import Store

DEFAULT_TENANT = "default"
DEFAULT_PROJECT = "default"
MAX_PAGE = 1000
DEFAULT_PAGE = 50
#: The longest ``actor`` a history records (its column's width).
MAX_ACTOR_CHARS = 200

projects_table = table(ProjectRow)
tenants_table = table(TenantRow)

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class Scope:
    """Whose data a Store view sees: one tenant, optionally only some of its projects."""

    tenant: str = DEFAULT_TENANT
    projects: frozenset[str] | None = None  # None: every project of the tenant
    #: May manage every tenant and the server (the library's own view, and the server's
    #: for admin keys of the operator tenant); otherwise only its own tenant.
    server_admin: bool = True
    #: The caller's role and when its key expires: a key may create only keys with rights
    #: it holds itself (see ``store.keys``).
    role: str = "admin"
    expires_at: datetime | None = None
    #: The scopes the caller's key holds (None: every scope); the server checks them per
    #: route, and a key passes on only those it holds.
    scopes: frozenset[str] | None = None


class Domain:
    """Base of ``store.conversations``, ``store.memories``, …"""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store.db
        self._settings = store.settings

    # --- projects ---

    def _project_id(self, connection: Connection, project: str) -> uuid.UUID:
        """The id of ``project`` in this scope; NotFoundError when absent or not visible."""
        scope = self._store.scope
        if scope.projects is not None and project not in scope.projects:
            raise NotFoundError(f"No project {project!r}")
        found = connection.execute(
            select(projects_table.c.id)
            .join(tenants_table, tenants_table.c.id == projects_table.c.tenant_id)
            .where(
                tenants_table.c.slug == scope.tenant,
                tenants_table.c.is_active.is_(True),
                projects_table.c.slug == project,
            )
        ).scalar()
        if found is None:
            raise NotFoundError(f"No project {project!r}", hint="create it with projects.create")
        return found

    def _scope_params(self, project: str) -> dict[str, Any]:
        """Parameters of :func:`project_id_subquery` for ``project`` in this scope."""
        scope = self._store.scope
        if scope.projects is not None and project not in scope.projects:
            raise NotFoundError(f"No project {project!r}")
        return {"scope_tenant": scope.tenant, "scope_project": project}

    def _project_sql(self, project: str) -> Any:
        """The id of ``project`` in this scope as SQL, to put in a statement's WHERE clause
        (no round trip of its own); NotFoundError for a project outside the scope."""
        return project_id_expression(self._scope_params(project)["scope_tenant"], project)

    def _list_of(self, project: str) -> tuple[str, str]:
        """What a list in ``project`` is within: its cursors are refused anywhere else."""
        return (self._store.scope.tenant, project)

    def _point_read(
        self,
        model: type[M],
        what: str,
        item_id: uuid.UUID | str,
        project: str,
        statement: tuple[str, Callable[[], Any]],
    ) -> M:
        """The ``what`` with id ``item_id`` in ``project`` of this scope, read by one
        prepared statement (name, builder) binding ``id`` and the scope's parameters."""
        item_id = as_uuid(item_id, what)
        params = self._scope_params(project)
        params["id"] = item_id
        found = self._db.prepared(*statement).read_records(self._db, params, model)
        if not found:
            raise NotFoundError(f"No {what} {item_id}")
        return found[0]

    def _one(
        self,
        connection: Connection,
        target: Table,
        model: type[M],
        what: str,
        item_id: uuid.UUID,
        project: str,
        *where: Any,
    ) -> M:
        """The row of ``target`` with id ``item_id`` in ``project`` of this scope (and
        meeting ``where``) as ``model``; NotFoundError naming the ``what`` if none."""
        row = connection.execute(
            select(target).where(
                target.c.id == item_id,
                target.c.project_id == self._project_id(connection, project),
                *where,
            )
        ).first()
        if row is None:
            raise NotFoundError(f"No {what} {item_id}")
        return model.model_validate(row._mapping)

    def _delete_one(self, target: Table, what: str, item_id: uuid.UUID | str, project: str) -> None:
        """Delete the row of ``target`` with id ``item_id`` in ``project`` of this scope
        (the schema's cascades take what it owns); NotFoundError naming the ``what`` if none."""
        item_id = as_uuid(item_id, what)
        with self._db.connect(write=True) as connection:
            done = connection.execute(
                delete(target).where(
                    target.c.id == item_id,
                    target.c.project_id == self._project_id(connection, project),
                )
            )
            if done.rowcount == 0:
                raise NotFoundError(f"No {what} {item_id}")

    # --- limits ---

    def _check_text(self, field: str, text: str | None) -> None:
        if text is not None and len(text.encode()) > self._settings.max_content_bytes:
            raise PayloadTooLargeError(
                f"{field} is larger than {self._settings.max_content_bytes} bytes",
                details={"field": field, "limit": self._settings.max_content_bytes},
            )

    def _check_json(self, field: str, value: Any) -> None:
        if value is not None and json_size(value) > self._settings.max_metadata_bytes:
            raise PayloadTooLargeError(
                f"{field} is larger than {self._settings.max_metadata_bytes} bytes of JSON",
                details={"field": field, "limit": self._settings.max_metadata_bytes},
            )

    def _check_actor(self, actor: str | None) -> None:
        """Who made a change, as a history records it: text of at most 200 characters."""
        if actor is None:
            return
        try:
            if not isinstance(actor, str) or len(actor) > MAX_ACTOR_CHARS:
                raise ValueError(f"must be text of at most {MAX_ACTOR_CHARS} characters")
            storable_text(actor)
        except ValueError as error:
            raise InvalidInputError(
                f"Invalid input: actor: {error}",
                details=[{"location": ["actor"], "message": str(error), "type": "value_error"}],
            ) from None

    def _check_batch(self, count: int) -> None:
        if count > self._settings.max_batch_size:
            raise PayloadTooLargeError(
                f"A batch holds at most {self._settings.max_batch_size} items, not {count}",
                details={"limit": self._settings.max_batch_size},
            )
        if count == 0:
            raise InvalidInputError("The batch is empty")


# --- histories ---------------------------------------------------------------------------


@dataclass(frozen=True)
class History(Generic[M]):
    """A table of changes to the records of ``target`` (messages' edits, memories'
    changes): per change the old and new values of the fields it ``tracks`` (in JSON
    form), the action, who made it and when. ``owner`` is its column naming the record."""

    table: Table
    owner: str
    model: type[M]
    target: Table
    tracks: tuple[str, ...]

    def values(self, item: BaseModel) -> dict[str, Any]:
        """The tracked fields of ``item``, as a change records them."""
        return item.model_dump(mode="json", include=set(self.tracks))

    def entry(
        self,
        owner_id: uuid.UUID,
        action: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        actor: str | None,
        at: datetime,
    ) -> dict[str, Any]:
        """The row recording one change."""
        return {
            "id": new_id(),
            self.owner: owner_id,
            "action": action,
            "old_value": old,
            "new_value": new,
            "actor": actor,
            "created_at": at,
        }

    def edit(
        self,
        connection: Connection,
        current: R,
        item_id: uuid.UUID,
        changes: dict[str, Any],
        actor: str | None,
        at: datetime,
    ) -> tuple[R, set[str]]:
        """Write those of ``changes`` that differ from ``current`` (the record ``item_id``)
        and record them as an update; returns the record as it then is and the fields
        that changed. When none differs nothing is written: ``current``, no fields."""
        before = self.values(current)
        changed = {k: v for k, v in changes.items() if before[k] != to_jsonable_python(v)}
        if not changed:
            return current, set()
        row = connection.execute(
            update(self.target)
            .where(self.target.c.id == item_id)
            .values(**changed, updated_at=at)
            .returning(*self.target.c)
        ).one()
        updated = type(current).model_validate(row._mapping)
        after = self.values(updated)
        old, new = {k: before[k] for k in changed}, {k: after[k] for k in changed}
        connection.execute(insert(self.table), self.entry(item_id, "update", old, new, actor, at))
        return updated, set(changed)

    def of(self, connection: Connection, owner_id: uuid.UUID) -> list[M]:
        """Every change of the record ``owner_id``, oldest first."""
        t = self.table.c
        rows = connection.execute(
            select(self.table).where(t[self.owner] == owner_id).order_by(t.id)
        )
        return [self.model.model_validate(r._mapping) for r in rows]


def project_id_subquery(tenant: str | None = None, project: str | None = None) -> Any:
    """The id of project ``:scope_project`` of active tenant ``:scope_tenant``, as SQL.

    Point reads and writes put it in their WHERE clause, so checking that a record is in
    the caller's project costs no extra round trip.
    """
    return (
        select(projects_table.c.id)
        .join(tenants_table, tenants_table.c.id == projects_table.c.tenant_id)
        .where(
            tenants_table.c.slug == bindparam("scope_tenant", tenant),
            tenants_table.c.is_active.is_(true()),
            projects_table.c.slug == bindparam("scope_project", project),
        )
        .scalar_subquery()
    )


def project_id_expression(tenant: str, project: str) -> Any:
    """:func:`project_id_subquery` with its values bound: usable in any statement."""
    return project_id_subquery(tenant, project)


def parse(model: type[M], value: Any) -> M:
    """``value`` as ``model``, accepting a model instance or a dict; InvalidInputError
    naming each bad field and why if not."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as e:
        raise invalid_input(e.errors()) from None


def invalid_input(errors: Sequence[Any]) -> InvalidInputError:
    """One InvalidInputError for pydantic's ``errors``: each field, and why, in the message
    and in ``details``."""
    problems = [
        {"location": [str(p) for p in err["loc"]], "message": _reason(err), "type": err["type"]}
        for err in errors
    ]
    listed = "; ".join(
        f"{'.'.join(p['location']) or 'the input'}: {p['message']}" for p in problems
    )
    return InvalidInputError(f"Invalid input: {listed}", details=problems)


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"])


def given(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a typed method that are ``model``'s fields, without the ``None``
    ones: absent, so the model's own defaults (and "leave as it is" in a patch) apply."""
    return {k: v for k, v in values.items() if k in model.model_fields and v is not None}


def as_uuid(value: uuid.UUID | str, what: str = "id") -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError(f"No {what} {value!r}") from None


# --- pagination ---------------------------------------------------------------------------


def page_limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be an integer from 1 to {MAX_PAGE}")
    return limit


#: The largest stream sequence or position a caller may name (records.SequenceNumber).
MAX_SEQUENCE = 2**62


def sequence_number(name: str, value: Any) -> int:
    """``value`` if it is a stream sequence or position (an int from 0 to 2^62), else
    InvalidInputError: a larger one would overflow SQLite's integers."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQUENCE:
        raise InvalidInputError(f"{name} must be an integer from 0 to {MAX_SEQUENCE}")
    return value


def version_number(name: str, value: Any) -> int:
    """``value`` if it is a version number (an int from 1 to the column's 2^31 - 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= INT32_MAX:
        raise InvalidInputError(f"{name} must be an integer from 1 to {INT32_MAX}")
    return value


# A cursor is opaque to callers but not trusted: it comes back in a query string and may be
# crafted, truncated, from another list or project, or from an older version. Each list
# names its keyset once (its name and the type of each part of its sort key); a cursor
# carries the format version, the list's name, a digest of what the list is within (tenant,
# project, parent record) and the key, and every part is checked for type and range before
# it reaches SQL. Whatever is wrong, the caller gets the one InvalidCursorError.

CURSOR_VERSION = 1
#: Above the longest cursor this API makes (a state entry's 500-character namespace and
#: key: ~1,500 characters); bounds the work of decoding.
MAX_CURSOR_CHARS = 4096
INT64_MAX = 2**63 - 1
_CURSOR_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_CURSOR_FIELDS = frozenset({"v", "l", "s", "k"})  # version, list, scope digest, key

#: Checks one part of a decoded key and returns it as SQL wants it; ValueError if unfit.
KeyPart = Callable[[Any], Any]


def uuid_part(value: Any) -> uuid.UUID:
    """A UUID written exactly as :meth:`Keyset.encode` writes it (canonical form)."""
    if not isinstance(value, str) or str(uuid.UUID(value)) != value:
        raise ValueError("not a canonical UUID")
    return uuid.UUID(value)


def text_part(max_chars: int) -> KeyPart:
    """Text of at most ``max_chars`` characters that the database can store (no NUL, no
    lone surrogate)."""

    def part(value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_chars or "\x00" in value:
            raise ValueError("not a text key")
        value.encode()  # UnicodeEncodeError (a ValueError) on a lone surrogate
        return value

    return part


def count_part(maximum: int) -> KeyPart:
    """An integer from 0 to ``maximum`` (the column's range), not a bool."""

    def part(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            raise ValueError("not a count in range")
        return value

    return part


@dataclass(frozen=True)
class Keyset:
    """How one list pages: its name and the type of each part of its sort key.

    ``within`` names the one list instance a cursor belongs to (e.g. tenant and project);
    a cursor made within other values is refused.
    """

    name: str
    parts: tuple[KeyPart, ...]

    def encode(self, key: Sequence[Any], within: Sequence[Any]) -> str:
        body = {
            "v": CURSOR_VERSION,
            "l": self.name,
            "s": self._digest(within),
            "k": [str(k) if isinstance(k, uuid.UUID) else k for k in key],
        }
        raw = json.dumps(body, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, cursor: Any, within: Sequence[Any]) -> list[Any]:
        """The key in ``cursor``, each part checked; InvalidCursorError if it is not a
        cursor this list returned within ``within``."""
        body = _cursor_body(cursor)
        if body.get("v") != CURSOR_VERSION or type(body.get("v")) is not int:
            raise _bad_cursor("made by another version")
        if body.get("l") != self.name or body.get("s") != self._digest(within):
            raise _bad_cursor("from another list or project")
        key = body.get("k")
        if not isinstance(key, list) or len(key) != len(self.parts):
            raise _bad_cursor("malformed")
        try:
            return [check(part) for check, part in zip(self.parts, key, strict=True)]
        except ValueError:
            raise _bad_cursor("malformed") from None

    def page(
        self, items: list[M], limit: int, key: Callable[[M], Sequence[Any]], within: Sequence[Any]
    ) -> Page[M]:
        """A page from up to ``limit + 1`` fetched items: the extra one only says there is
        more."""
        if len(items) > limit:
            items = items[:limit]
            next_cursor = self.encode(key(items[-1]), within)
            return Page[Any](items=items, next_cursor=next_cursor)
        return Page[Any](items=items, next_cursor=None)

    def _digest(self, within: Sequence[Any]) -> str:
        # Joined with a separator no slug, id or namespace contains, so no two scopes collide.
        scope = "\x1f".join([self.name, *(str(w) for w in within)])
        return hashlib.sha256(scope.encode()).hexdigest()[:16]


def _cursor_body(cursor: Any) -> dict[str, Any]:
    """The JSON object inside ``cursor``; InvalidCursorError if there is none."""
    if (
        not isinstance(cursor, str)
        or len(cursor) > MAX_CURSOR_CHARS
        or not _CURSOR_ALPHABET.fullmatch(cursor)
    ):
        raise _bad_cursor("malformed")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw.decode(), parse_constant=_no_constant)
    except (ValueError, RecursionError):  # binascii, UTF-8 and JSON errors are ValueErrors
        raise _bad_cursor("malformed") from None
    if not isinstance(body, dict) or set(body) != _CURSOR_FIELDS:
        raise _bad_cursor("made by another version" if isinstance(body, list) else "malformed")
    return body


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a cursor value")


def only_text_cursor(cursor: object) -> None:
    """Refuse a cursor that is not text as a bad cursor, before an input model could turn
    bytes into text or call it a plain invalid input."""
    if cursor is not None and not isinstance(cursor, str):
        raise _bad_cursor("not text")


def _bad_cursor(reason: str) -> InvalidCursorError:
    return InvalidCursorError(
        "The cursor is not one this list returned",
        details={"reason": reason},
        hint="pass the next_cursor of the previous page of the same list, or no cursor",
    )
