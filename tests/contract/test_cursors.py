"""Every list method refuses a cursor it did not return with InvalidCursorError.

The list methods are those of the Store (or Client) taking keyword-only ``limit`` and
``cursor``, found by walking the object, so a new list is covered the day it is written.
The cursors refused are those of tests/server/test_cursors.py, another tenant's real
cursors among them (taken by that tenant's own view: a scoped Store, or a Client with
one of its admin keys).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import ctxbase
from ctxbase.store.base import Scope
from tests.cursors import (
    OTHER_TENANT,
    PROJECTS,
    Parents,
    garbage,
    seed_every_list,
    seed_the_other_tenant,
)

ListMethod = Callable[..., Any]


def list_methods(api: Any) -> dict[str, ListMethod]:
    """``"domain.method"`` → bound method, for every list operation of ``api``."""
    found = {}
    for domain_name, domain in vars(api).items():
        if domain_name.startswith("_"):
            continue
        for name, member in inspect.getmembers_static(type(domain), inspect.isfunction):
            parameters = inspect.signature(member).parameters
            if not name.startswith("_") and all(
                p in parameters and parameters[p].kind is inspect.Parameter.KEYWORD_ONLY
                for p in ("limit", "cursor")
            ):
                found[f"{domain_name}.{name}"] = getattr(domain, name)
    return found


def test_every_list_method_refuses_a_cursor_it_did_not_return(
    api: Any, store: ctxbase.Store, http_server: tuple[str, str] | None
) -> None:
    parents = seed_every_list(store)
    their_parents = seed_the_other_tenant(store)
    methods = list_methods(api)
    assert {"conversations.list", "subscriptions.dead_letters"} <= set(methods)
    real = {
        (name, project): _next_cursor(method, project, parents)
        for name, method in methods.items()
        for project in _projects_of(method)
    }
    with _the_other_tenant(store, http_server) as theirs:
        their_cursors = _their_cursors(theirs, their_parents)
    problems = []
    for name, method in methods.items():
        here = _projects_of(method)[0]
        own = real[name, here]
        assert len(_call(method, here, parents, limit=1, cursor=own).items) == 1
        foreign = {f"of {n} in {p}": c for (n, p), c in real.items() if c != own}
        foreign |= {
            f"of {n} in {p} of tenant {OTHER_TENANT}": c
            for (n, p), c in their_cursors.items()
            if c != own  # the operator's lists (tenants, jobs) are the same list for anyone
        }
        cases: list[tuple[str, Any]] = list(garbage(own, foreign))
        if isinstance(api, ctxbase.Store):  # only the library can be handed a non-text
            cases += [("a number", 12), ("bytes", own.encode()), ("a list", [own])]
        for what, cursor in cases:
            try:
                _call(method, here, parents, limit=50, cursor=cursor)
            except ctxbase.InvalidCursorError:
                continue
            except Exception as e:  # any other outcome is what this test reports
                problems.append(f"{name}, {what}: {type(e).__name__}: {str(e)[:200]}")
            else:
                problems.append(f"{name}, {what}: accepted")
    assert not problems, "\n".join(problems)


@contextmanager
def _the_other_tenant(store: ctxbase.Store, http_server: tuple[str, str] | None) -> Iterator[Any]:
    """:data:`OTHER_TENANT` as one of its admins sees it, through the interface under test."""
    if http_server is None:
        yield store.scoped(Scope(tenant=OTHER_TENANT, server_admin=False))
        return
    key = store.keys.create(tenant=OTHER_TENANT, role="admin", name="their admin").key
    with ctxbase.Client(http_server[0], api_key=key) as client:
        yield client


def _their_cursors(theirs: Any, parents: dict[str, Parents]) -> dict[tuple[str, str | None], str]:
    """The next page's cursor of every list the other tenant's admin may read; the
    operator's lists refuse it and give none."""
    cursors = {}
    for name, method in list_methods(theirs).items():
        for project in _projects_of(method):
            try:
                cursors[name, project] = _next_cursor(method, project, parents)
            except ctxbase.PermissionDeniedError:
                assert project is None, f"{name} refused in its own project {project}"
    return cursors


def _projects_of(method: ListMethod) -> tuple[str | None, ...]:
    return PROJECTS if "project" in inspect.signature(method).parameters else (None,)


def _call(
    method: ListMethod, project: str | None, parents: dict[str, Parents], **options: Any
) -> Any:
    """``method`` on ``project``'s records, its required parents filled in."""
    for name, parameter in inspect.signature(method).parameters.items():
        if name == "project" and project is not None:
            options[name] = project
        elif parameter.default is inspect.Parameter.empty and name not in options:
            try:
                options[name] = parents[str(project)].value_of(name)
            except KeyError:
                pytest.fail(f"{method.__qualname__}: tests/cursors.py makes no {name}")
    return method(**options)


def _next_cursor(method: ListMethod, project: str | None, parents: dict[str, Parents]) -> str:
    cursor = _call(method, project, parents, limit=1).next_cursor
    assert isinstance(cursor, str), f"{method.__qualname__}: tests/cursors.py makes no page 2"
    return cursor


def test_the_longest_keys_still_page(api: Any) -> None:
    """The longest cursor made (a state entry's namespace and key at their 500-character
    limits) is one the list takes back."""
    namespace = "/".join(["n" * 100] * 4 + ["n" * 96])
    keys = ["k" * 499 + "1", "k" * 499 + "2"]
    for key in keys:
        api.state.put(key, 1, namespace=namespace)
    first = api.state.list(namespace=namespace, limit=1)
    rest = api.state.list(namespace=namespace, limit=1, cursor=first.next_cursor)
    assert (len(namespace), rest.next_cursor) == (500, None)
    assert [entry.key for entry in first.items + rest.items] == keys
