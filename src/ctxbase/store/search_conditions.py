"""The SQL conditions a search puts on each kind's rows, as named bind parameters.

Every value (project, filters, the current time) is a bind parameter with a fixed name,
so a statement built from the conditions compiles once per *shape* (the kind and which
filters are set) and runs again with each search's values: the vector legs keep one
prepared statement per shape and need only :attr:`ItemConditions.params`. The clauses
themselves, which carry their values too (for Core statements such as the full-text
leg's), are built only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, or_, select

from ctxbase.db.schema import Conversation, table
from ctxbase.records import SearchFilters
from ctxbase.store.base import project_id_subquery
from ctxbase.store.embedding import KIND_TABLES
from ctxbase.store.filters import metadata_matches, metadata_params

if TYPE_CHECKING:
    from ctxbase.db.backends.base import Backend

conversations_table = table(Conversation)
FIELDS_OF = {
    "message": {"agent_id", "conversation_id"},
    "context": {"source_type"},
    "memory": {"agent_id", "user_id", "conversation_id", "memory_type"},
}
_EQUALITY_FILTERS = ("user_id", "memory_type", "source_type", "conversation_id")


@dataclass(frozen=True)
class ItemConditions:
    """Conditions on one kind's table: the values of their parameters, and their shape
    (two searches of the same shape differ only in parameter values)."""

    kind: str
    filters: SearchFilters
    backend: Backend
    params: dict[str, Any]
    shape: tuple[Any, ...]

    @cached_property
    def project_id(self) -> Any:
        """The project's id as SQL, from the scope parameters."""
        return project_id_subquery(self.params["scope_tenant"], self.params["scope_project"])

    @cached_property
    def clauses(self) -> list[Any]:
        items, filters, params = KIND_TABLES[self.kind], self.filters, self.params

        def bound(name: str) -> Any:
            return bindparam(name, params[name])

        clauses: list[Any] = [items.c.project_id == self.project_id]
        if filters.created_after is not None:
            clauses.append(items.c.created_at >= bound("created_after"))
        if filters.created_before is not None:
            clauses.append(items.c.created_at < bound("created_before"))
        if filters.metadata:
            clauses.append(metadata_matches(items.c.metadata, filters.metadata, self.backend))
        if self.kind == "context":
            clauses.append(items.c.superseded_by.is_(None))
        if self.kind == "memory":
            clauses.append(or_(items.c.expires_at.is_(None), items.c.expires_at > bound("now")))
        for name in _EQUALITY_FILTERS:
            if name in params:
                clauses.append(items.c[name] == bound(name))
        if filters.agent_id is not None:
            if self.kind == "memory":
                clauses.append(items.c.agent_id == bound("agent_id"))
            else:
                conversations = select(conversations_table.c.id).where(
                    conversations_table.c.agent_id == bound("agent_id"),
                    conversations_table.c.project_id == self.project_id,
                )
                clauses.append(items.c.conversation_id.in_(conversations))
        return clauses


def item_conditions(
    kind: str, filters: SearchFilters, tenant: str, project: str, now: datetime, backend: Backend
) -> ItemConditions | None:
    """The conditions on ``kind``'s rows, or None when a filter rules the kind out."""
    wanted = {
        name
        for name in FIELDS_OF["memory"] | FIELDS_OF["context"]
        if getattr(filters, name) is not None
    }
    if wanted - FIELDS_OF[kind]:
        return None
    params: dict[str, Any] = {"scope_tenant": tenant, "scope_project": project}
    for name in ("created_after", "created_before", *_EQUALITY_FILTERS, "agent_id"):
        if getattr(filters, name) is not None:
            params[name] = getattr(filters, name)
    if kind == "memory":
        params["now"] = now
    shape: list[Any] = [kind, *sorted(params)]
    if filters.metadata:
        params.update(metadata_params(filters.metadata, backend))
        # the keys are parameters too; only JSON null may change the SQL (it does on SQLite)
        shape.append(("metadata", tuple(value is None for value in filters.metadata.values())))
    return ItemConditions(kind, filters, backend, params, tuple(shape))
