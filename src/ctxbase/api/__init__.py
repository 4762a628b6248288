"""The API of ctxbase, declared once: one :class:`Operation` per operation.

``OPERATIONS`` maps each operation's name (``"memories.add"``) to its declaration. The
server's access table and routes, the HTTP clients and the asyncio facade are built
from it; the Store's methods are checked against it by the test suite. Adding an
operation is one declaration here plus its implementation in the Store (and, for a
route, a handler decorated with :func:`ctxbase.server.routing.declared`).
"""

from __future__ import annotations

from ctxbase.api.admin import ADMIN_OPERATIONS
from ctxbase.api.data import DATA_OPERATIONS
from ctxbase.api.imports import IMPORT_OPERATIONS
from ctxbase.api.quality import QUALITY_OPERATIONS
from ctxbase.api.recall import RECALL_OPERATIONS
from ctxbase.api.spec import API_PREFIX, Arg, Operation, Rule, Wire

OPERATIONS: dict[str, Operation] = {}
_ALL = (
    *DATA_OPERATIONS,
    *QUALITY_OPERATIONS,
    *IMPORT_OPERATIONS,
    *ADMIN_OPERATIONS,
    *RECALL_OPERATIONS,
)
for _operation in _ALL:
    if _operation.name in OPERATIONS:
        raise RuntimeError(f"operation {_operation.name!r} is declared twice")
    OPERATIONS[_operation.name] = _operation

#: Public Store methods that are not operations of the API, and why. Everything else a
#: Store sub-API exposes must be declared above (the parity test enforces it).
LIBRARY_ONLY: dict[str, str] = {
    "check_connection": "the library's own diagnosis; over HTTP it is `health`",
    "check_embedder": "the library's own diagnosis; over HTTP part of `health`",
    "check_redis": "the library's own diagnosis; over HTTP part of `health`",
    "close": "releases the library's connections",
    "prune": "housekeeping of every project at once, run by the server's own loop",
    "scoped": "builds a view of the store; the server does it per request",
    "embeddings.pending": "over HTTP, part of `embeddings.status`",
    "embeddings.active_model": "over HTTP, part of `embeddings.status`",
    "embeddings.reembed": "blocking, with a progress callback; over HTTP a job",
    "embeddings.backfill": "blocking, with a progress callback; run by the server's loop",
}

#: Plumbing the sub-APIs share with each other inside the package: public by name only.
INTERNAL: frozenset[str] = frozenset(
    {
        "audit.record",
        "keys.authenticate",
        "keys.count",
        "keys.touch",
        "events.between",
        "search.prepare_index",
        "databases.active",
        "databases.mark_active",
        "databases.mark_migrating",
        "databases.unmark_migrating",
        "databases.settings_for",
        "databases.url",
        "embeddings.embed",
        "embeddings.embeds",
        "embeddings.replace",
        "embeddings.insert",
        "embeddings.insert_prepared",
        "embeddings.record_active_model",
        "embeddings.rows",
        "embeddings.vectors_for",
    }
)


def operation(name: str) -> Operation:
    """The declaration of ``name``; KeyError names it when there is none."""
    try:
        return OPERATIONS[name]
    except KeyError:
        raise KeyError(f"no operation {name!r} is declared") from None


def access_rules() -> dict[tuple[str, str], Rule]:
    """``(method, path) -> rule`` for every route, as the server's access check reads it."""
    rules: dict[tuple[str, str], Rule] = {}
    for op in OPERATIONS.values():
        if op.on == "library":
            continue
        key = op.route_key
        if rules.setdefault(key, op.rule) != op.rule:
            raise RuntimeError(f"{key} is declared with two access rules")
    return rules


__all__ = [
    "API_PREFIX",
    "INTERNAL",
    "LIBRARY_ONLY",
    "OPERATIONS",
    "Arg",
    "Operation",
    "Rule",
    "Wire",
    "access_rules",
    "operation",
]
