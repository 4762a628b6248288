"""What every domain API of the Store shares: scope, project lookup, limits, pages."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, bindparam, select, true

from ctxbase.db.schema import Project as ProjectRow
from ctxbase.db.schema import Tenant as TenantRow
from ctxbase.db.schema import table
from ctxbase.errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from ctxbase.records import Page, json_size

if TYPE_CHECKING:
    from ctxbase.store.store import Store

DEFAULT_TENANT = "default"
DEFAULT_PROJECT = "default"
MAX_PAGE = 1000
DEFAULT_PAGE = 50

projects_table = table(ProjectRow)
tenants_table = table(TenantRow)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Scope:
    """Whose data a Store view sees: one tenant, optionally only some of its projects."""

    tenant: str = DEFAULT_TENANT
    projects: frozenset[str] | None = None  # None: every project of the tenant
    #: May manage every tenant and the server (the library's own view, and the server's
    #: for admin keys of the operator tenant); otherwise only its own tenant.
    server_admin: bool = True


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
        prepared = self._db.prepared(*statement)
        params = {"id": item_id, **self._scope_params(project)}
        with self._db.raw() as cursor:
            found = prepared.first_record(cursor, params, model)
        if found is None:
            raise NotFoundError(f"No {what} {item_id}")
        return found

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

    def _check_batch(self, count: int) -> None:
        if count > self._settings.max_batch_size:
            raise PayloadTooLargeError(
                f"A batch holds at most {self._settings.max_batch_size} items, not {count}",
                details={"limit": self._settings.max_batch_size},
            )
        if count == 0:
            raise InvalidInputError("The batch is empty")


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


def sequence_number(name: str, value: Any) -> int:
    """``value`` if it is a stream sequence (an int >= 0), else InvalidInputError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{name} must be a non-negative integer")
    return value


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps([str(k) if isinstance(k, uuid.UUID) else k for k in key])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *types: Callable[[Any], Any]) -> list[Any]:
    """The key stored in ``cursor``, each part converted by the matching type."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(parts, list) or len(parts) != len(types):
            raise ValueError("wrong shape")
        return [kind(part) for kind, part in zip(types, parts, strict=True)]
    except (ValueError, TypeError, UnicodeError) as e:
        raise InvalidInputError("The cursor is not one this API returned") from e


def make_page(items: list[M], limit: int, key: Callable[[M], Sequence[Any]]) -> Page[M]:
    """A page from up to ``limit + 1`` fetched items: the extra one only says there is more."""
    if len(items) > limit:
        items = items[:limit]
        return Page[Any](items=items, next_cursor=encode_cursor(key(items[-1])))
    return Page[Any](items=items, next_cursor=None)
