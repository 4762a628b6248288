"""Every interface carries every declared operation with the declared signature.

The Store (the implementation), the AsyncStore, the Client, the AsyncClient and the
OpenAPI document are each compared with the declarations in :mod:`ctxbase.api`; the
last tests check that the comparison itself fails when a method goes missing.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
from typing import Any

import pytest

import ctxbase
from ctxbase.api import LIBRARY_ONLY, OPERATIONS
from ctxbase.server.app import create_app
from tests.api.parity import (
    http_operations,
    interface_problems,
    library_operations,
    member,
    undeclared_store_methods,
)


@pytest.fixture(scope="module")
def store() -> Any:
    with ctxbase.open("sqlite://") as store:
        yield store


def test_the_store_implements_every_declared_operation(store: Any) -> None:
    assert interface_problems(store, library_operations(), http=False) == []


def test_the_store_has_no_public_method_left_undeclared(store: Any) -> None:
    assert undeclared_store_methods(store) == []


def test_the_async_store_carries_every_store_operation(store: Any) -> None:
    facade = ctxbase.AsyncStore(store)
    assert interface_problems(facade, library_operations(), http=False) == []
    for name in LIBRARY_ONLY:
        if name != "scoped":
            assert inspect.iscoroutinefunction(member(facade, name)), name


@pytest.mark.parametrize("client_class", ["Client", "AsyncClient"])
def test_each_client_carries_every_http_operation(client_class: str) -> None:
    client = getattr(ctxbase, client_class)("http://127.0.0.1:1")
    assert interface_problems(client, http_operations(), http=True) == []


def test_the_clients_carry_every_store_operation_that_has_a_route() -> None:
    routed = {op.name for op in http_operations()}
    both = [op for op in library_operations() if op.name in routed]
    assert both, "no operation is on both the library and the REST API"
    assert interface_problems(ctxbase.Client(), both, http=True) == []


@functools.cache
def _openapi_operations() -> dict[tuple[str, str], dict[str, Any]]:
    with ctxbase.open("sqlite://") as store:
        document = create_app(store=store).openapi()
    found = {}
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            found[(method.upper(), path.removeprefix("/api/v1"))] = spec
    return found


def test_openapi_has_every_route_and_only_declared_ones() -> None:
    documented = _openapi_operations()
    declared = {op.route_key for op in http_operations()}
    assert set(documented) == declared


@pytest.mark.parametrize("name", [op.name for op in http_operations()])
def test_openapi_parameters_are_the_declared_ones(name: str) -> None:
    op = OPERATIONS[name]
    spec = _openapi_operations()[op.route_key]
    params = {(p["in"], p["name"]) for p in spec.get("parameters", [])}
    path_names = set(re.findall(r"{(\w+)", op.route_key[1]))
    assert {n for where, n in params if where == "path"} == path_names
    queries = {n for where, n in params if where == "query"}
    expected: set[str] = set()
    for same in [o for o in http_operations() if o.route_key == op.route_key]:
        expected |= set(same.query.model_fields) if same.query is not None else set()
        expected |= {a.name for a, where in same.parameters() if where == "query"}
    assert queries == expected
    headers = {n.lower() for where, n in params if where == "header"}
    declared_headers = {a.header.lower() for a in op.extra if a.header}
    assert declared_headers <= headers
    if op.body is not None:
        assert op.body.__name__ in str(spec["requestBody"])


@pytest.mark.parametrize("name", [op.name for op in http_operations()])
def test_openapi_summary_and_status_come_from_the_declaration(name: str) -> None:
    op = OPERATIONS[name]
    spec = _openapi_operations()[op.route_key]
    assert str(op.status) in spec["responses"]
    shared = [o for o in http_operations() if o.route_key == op.route_key]
    if len(shared) == 1:
        assert spec["summary"] == op.summary


# --- the check itself fails when an interface lacks a method --------------------------


def _without(root: Any, name: str) -> Any:
    """A stand-in for ``root`` whose ``name`` (``domain.method``) is missing."""
    domain, _, method = name.rpartition(".")
    copy = types.SimpleNamespace(
        **{k: getattr(root, k) for k in dir(root) if not k.startswith("__")}
    )
    if not domain:
        delattr(copy, method)
        return copy
    sub = getattr(root, domain)
    members = {k: getattr(sub, k) for k in dir(sub) if not k.startswith("__") and k != method}
    setattr(copy, domain, types.SimpleNamespace(**members))
    return copy


@pytest.mark.parametrize("name", ["memories.add", "events.append", "search", "state.put"])
def test_the_check_fails_when_the_store_lacks_a_method(store: Any, name: str) -> None:
    problems = interface_problems(_without(store, name), library_operations(), http=False)
    assert problems == [f"{name}: missing"]


@pytest.mark.parametrize("name", ["memories.add", "subscriptions.pending", "databases.test"])
def test_the_check_fails_when_a_client_lacks_a_method(name: str) -> None:
    for client in (ctxbase.Client(), ctxbase.AsyncClient()):
        problems = interface_problems(_without(client, name), http_operations(), http=True)
        assert problems == [f"{name}: missing"]


def test_the_check_fails_when_the_async_store_lacks_a_method(store: Any) -> None:
    facade = ctxbase.AsyncStore(store)
    problems = interface_problems(
        _without(facade, "events.append"), library_operations(), http=False
    )
    assert problems == ["events.append: missing"]


def test_the_check_fails_on_a_changed_signature(store: Any) -> None:
    copy = _without(store, "memories.add")

    def add(content: str, *, importanse: float = 0.5, project: str = "default") -> None: ...

    copy.memories.add = add
    problems = interface_problems(copy, [OPERATIONS["memories.add"]], http=False)
    assert "memories.add: has undeclared keyword importanse" in problems
    assert "memories.add: lacks keyword importance" in problems


@pytest.mark.parametrize("name", [op.name for op in http_operations() if op.body is not None])
def test_every_body_has_a_valid_example_shown_in_openapi(name: str) -> None:
    op = OPERATIONS[name]
    assert op.request_example is not None, f"{name} declares no example"
    assert op.body is not None
    op.body.model_validate(op.request_example)  # the example is a valid request
    spec = _openapi_operations()[op.route_key]
    shown = spec["requestBody"]["content"]["application/json"].get("example")
    shared = [o for o in http_operations() if o.route_key == op.route_key]
    assert shown == shared[0].request_example
