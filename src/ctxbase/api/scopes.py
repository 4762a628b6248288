"""Key scopes: which operations a key may call, beside its role and projects.

Every operation declares the scope it needs (:attr:`Operation.scope`): ``<domain>:read``
for operations that change nothing, ``<domain>:write`` for the others, the domain being
the first part of the operation's name (``memories`` for ``memories.add``, ``search`` for
``search``). A key holds a list of scopes, each a scope of an operation or a wildcard:
``memories:*`` (reading and writing memories), ``*:read`` (reading everything), ``*:*``.
A key without scopes holds every scope; its role alone limits it, as before scopes.

A scope grants exactly what it names: ``memories:write`` does not read memories. The
role still applies on top (a reader key holding ``memories:write`` writes nothing).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

WILDCARD = "*"
KINDS = ("read", "write")


@functools.cache
def known_scopes() -> frozenset[str]:
    """The scope of every declared operation that needs a key."""
    from ctxbase.api import OPERATIONS

    return frozenset(op.scope for op in OPERATIONS.values() if op.rule != "public")


@functools.cache
def known_domains() -> frozenset[str]:
    return frozenset(scope.partition(":")[0] for scope in known_scopes())


def check_scope(scope: str) -> str:
    """``scope`` if it names known operations (a declared scope, or a wildcard over a known
    domain or kind); ValueError naming it and the form otherwise."""
    domain, colon, kind = scope.partition(":")
    fits = (
        colon
        and (domain == WILDCARD or domain in known_domains())
        and (kind == WILDCARD or kind in KINDS)
        and (WILDCARD in (domain, kind) or scope in known_scopes())
    )
    if not fits:
        raise ValueError(
            f"unknown scope {scope!r}: a scope is <domain>:read, <domain>:write or a wildcard "
            f"(memories:*, *:read), over the domains {', '.join(sorted(known_domains()))}"
        )
    return scope


def covers(held: str, wanted: str) -> bool:
    """Whether the scope (or wildcard) ``held`` grants everything ``wanted`` names."""
    held_domain, _, held_kind = held.partition(":")
    domain, _, kind = wanted.partition(":")
    return held_domain in (WILDCARD, domain) and held_kind in (WILDCARD, kind)


def holds(scopes: Iterable[str] | None, wanted: str) -> bool:
    """Whether a key holding ``scopes`` (None: every scope) may use ``wanted``."""
    return scopes is None or any(covers(held, wanted) for held in scopes)


def route_scopes() -> dict[tuple[str, str], str]:
    """``(method, path) -> scope`` of every route that needs a key."""
    from ctxbase.api import OPERATIONS

    found: dict[tuple[str, str], str] = {}
    for op in OPERATIONS.values():
        if op.on == "library" or op.rule == "public":
            continue
        if found.setdefault(op.route_key, op.scope) != op.scope:
            raise RuntimeError(f"{op.route_key} is declared with two scopes")
    return found
