"""Checks that an interface carries every declared operation with its signature.

Used by test_parity.py on the Store, AsyncStore, Client, AsyncClient and the OpenAPI
document, and by its tests of the check itself (an interface missing a method fails).
"""

from __future__ import annotations

import inspect
from typing import Any

from ctxbase.api import INTERNAL, LIBRARY_ONLY, OPERATIONS, Operation
from ctxbase.client.wire import client_signature


def member(root: Any, name: str) -> Any:
    """``root.memories.add`` for ``"memories.add"``; AttributeError when absent."""
    target = root
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _shape(signature: inspect.Signature) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    positional, keywords = [], {}
    for p in signature.parameters.values():
        if p.name == "self":
            continue
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            keywords[p.name] = p.default
        elif p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional.append((p.name, p.default))
        else:
            keywords[f"**{p.name}" if p.kind is p.VAR_KEYWORD else f"*{p.name}"] = None
    return positional, keywords


def signature_problems(
    name: str, actual: inspect.Signature, expected: inspect.Signature
) -> list[str]:
    """How ``actual`` differs from ``expected``: names, kinds and defaults."""
    got_pos, got_kw = _shape(actual)
    want_pos, want_kw = _shape(expected)
    problems = []
    if got_pos != want_pos:
        problems.append(f"{name}: positional parameters {got_pos} instead of {want_pos}")
    for key in sorted(set(got_kw) | set(want_kw)):
        if key not in got_kw:
            problems.append(f"{name}: lacks keyword {key}")
        elif key not in want_kw:
            problems.append(f"{name}: has undeclared keyword {key}")
        elif got_kw[key] != want_kw[key]:
            problems.append(f"{name}: {key} defaults to {got_kw[key]!r}, declared {want_kw[key]!r}")
    return problems


def interface_problems(root: Any, operations: list[Operation], *, http: bool) -> list[str]:
    """What ``root`` lacks or declares differently among ``operations``."""
    problems = []
    for op in operations:
        try:
            method = member(root, op.name)
        except AttributeError:
            problems.append(f"{op.name}: missing")
            continue
        expected = client_signature(op) if http else op.signature()
        problems += signature_problems(op.name, inspect.signature(method), expected)
    return problems


def library_operations() -> list[Operation]:
    return [op for op in OPERATIONS.values() if op.on != "rest"]


def http_operations() -> list[Operation]:
    return [op for op in OPERATIONS.values() if op.on != "library"]


def undeclared_store_methods(store: Any) -> list[str]:
    """Public methods of the Store's sub-APIs that no declaration or list accounts for."""
    domains = {op.domain for op in library_operations() if "." in op.name}
    known = set(OPERATIONS) | set(LIBRARY_ONLY) | INTERNAL
    found = []
    for domain in sorted(domains):
        api = getattr(store, domain)
        for attr in dir(api):
            public = not attr.startswith("_") and callable(getattr(api, attr))
            if public and f"{domain}.{attr}" not in known:
                found.append(f"{domain}.{attr}")
    return found
