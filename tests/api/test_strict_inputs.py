"""Generated from the declarations: for every operation, an unknown field and a wrongly
typed field are refused through every interface, the error names the field, and nothing
is written. Runs on every backend."""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import ctxbase
from ctxbase.api import OPERATIONS, Operation
from ctxbase.db.schema import metadata
from ctxbase.errors import InvalidInputError
from ctxbase.server import create_app
from tests.api.parity import member
from tests.live import live_server

UNKNOWN = "zzz_unknown_field"
WRONG = "not-a-valid-value"
LIBRARY = [op for op in OPERATIONS.values() if op.on != "rest"]
HTTP = [op for op in OPERATIONS.values() if op.on != "library"]


def table_counts(store: ctxbase.Store) -> dict[str, int]:
    with store.db.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in metadata.tables.items()
            if name != "alembic_version"
        }


def _dummy(arg_name: str) -> Any:
    return str(uuid.uuid4()) if arg_name.endswith("id") or arg_name == "ref" else "x"


#: Valid values of positional body arguments, so only the field under test is wrong.
_VALID_BODIES: dict[str, Any] = {
    "events": [{"event_type": "t"}],
    "messages": [{"role": "user", "content": "x"}],
    "rows": [{"kind": "state", "key": "strict", "value": 1}],
    "sequence": 0,
}


def _positional(op: Operation) -> list[Any]:
    return [
        _VALID_BODIES.get(arg.name, _dummy(arg.name))
        for arg in op.positional()
        if arg.default is inspect.Parameter.empty
    ]


def _typed_field(op: Operation) -> str | None:
    """A field of the body or query model that a plain word cannot fill: a number, a flag,
    a list, an object, a time, an id or a choice."""
    for model in (op.body, op.query):
        if model is None:
            continue
        for name, info in model.model_fields.items():
            text = repr(info.annotation)
            if name not in {a.name for a in op.positional()} and not _accepts_text(text):
                return name
    return None


def _accepts_text(annotation: str) -> bool:
    words = ("int", "float", "bool", "list", "dict", "datetime", "UUID", "Literal", "Quotas")
    return not any(word in annotation for word in words) or annotation == "Any"


def _required(op: Operation, method: Any, skip: str) -> dict[str, Any]:
    """A valid value for each required keyword argument but ``skip``."""
    values = {}
    for param in inspect.signature(method).parameters.values():
        if param.kind is param.KEYWORD_ONLY and param.default is param.empty and param.name != skip:
            values[param.name] = _valid(param.annotation)
    return values


def _valid(annotation: Any) -> Any:
    text = repr(annotation)
    if "Literal" in text:
        for part in typing.get_args(annotation) or ():
            if typing.get_args(part):
                return typing.get_args(part)[0]
        return text.split("'")[1]
    return 1 if text.startswith("int") else "x"


def _call_library(target: Any, op: Operation, **kwargs: Any) -> Any:
    method = member(target, op.name)
    kwargs = {**_required(op, method, skip=next(iter(kwargs))), **kwargs}
    result = method(*_positional(op), **kwargs)
    if inspect.isawaitable(result):
        return asyncio.run(result)
    if inspect.isasyncgen(result):
        return asyncio.run(result.__anext__())
    if isinstance(result, typing.Iterator):
        return next(result)
    return result


@pytest.fixture
def facades(store: ctxbase.Store) -> dict[str, Any]:
    return {"Store": store, "AsyncStore": ctxbase.AsyncStore(store)}


def _refusal(target: Any, op: Operation, field: str, value: Any) -> str | None:
    """None when the call is refused naming ``field``; else what happened."""
    try:
        _call_library(target, op, **{field: value})
    except InvalidInputError as error:
        return None if field in str(error) else f"{op.name}: {error}"
    except Exception as error:
        return f"{op.name}: {type(error).__name__}: {error}"
    return f"{op.name}: accepted {field}={value!r}"


def test_an_unknown_argument_is_refused_by_name_in_the_library(
    store: ctxbase.Store, facades: dict[str, Any]
) -> None:
    before = table_counts(store)
    problems = [
        f"{name} {problem}"
        for name, target in facades.items()
        for op in LIBRARY
        if (problem := _refusal(target, op, UNKNOWN, 1))
    ]
    assert problems == []
    assert table_counts(store) == before


TYPED_LIBRARY = [op for op in LIBRARY if _typed_field(op) and op.body is not None]


def test_a_wrongly_typed_field_is_refused_by_name_in_the_library(
    store: ctxbase.Store, facades: dict[str, Any]
) -> None:
    assert len(TYPED_LIBRARY) >= 15
    before = table_counts(store)
    problems = [
        f"{name} {problem}"
        for name, target in facades.items()
        for op in TYPED_LIBRARY
        if (problem := _refusal(target, op, str(_typed_field(op)), WRONG))
    ]
    assert problems == []
    assert table_counts(store) == before


# --- over HTTP --------------------------------------------------------------------------


@pytest.fixture
def http(store: ctxbase.Store) -> Iterator[TestClient]:
    with TestClient(create_app(store=store)) as client:
        yield client


def _url(op: Operation) -> str:
    values = {name: _dummy(name) for name in op.path_params}
    values["project"] = "default"
    values["path"] = "ns/key"
    path = re.sub(r"{(\w+):path}", r"{\1}", op.path)
    return "/api/v1" + path.format(**values)


def _send(http: TestClient, op: Operation, body: Any, params: dict[str, Any]) -> Any:
    return http.request(op.method, _url(op), json=body, params=params)


def _names_field(response: Any, field: str) -> bool:
    error = response.json()["error"]
    locations = [p.get("location", []) for p in error.get("details") or []]
    return any(field in [str(part) for part in loc] for loc in locations) and (
        field in error["message"] or error["code"] == "invalid_input"
    )


def test_an_unknown_field_or_parameter_is_refused_by_name_over_rest(
    store: ctxbase.Store, http: TestClient
) -> None:
    before = table_counts(store)
    problems = []
    for op in HTTP:
        attempts = [({} if op.body is not None else None, {UNKNOWN: "1"})]
        if op.body is not None:
            attempts.append(({UNKNOWN: 1}, {}))
        for body, params in attempts:
            response = _send(http, op, body, params)
            if response.status_code != 422 or not _names_field(response, UNKNOWN):
                problems.append(f"{op.name}: {response.status_code} {response.text[:200]}")
    assert problems == []
    assert table_counts(store) == before


TYPED_HTTP = [op for op in HTTP if _typed_field(op)]


def test_a_wrongly_typed_field_is_refused_by_name_over_rest(
    store: ctxbase.Store, http: TestClient
) -> None:
    assert len(TYPED_HTTP) > 20
    before = table_counts(store)
    problems = []
    for op in TYPED_HTTP:
        field = str(_typed_field(op))
        in_body = op.body is not None and field in op.body.model_fields
        body = {field: WRONG} if in_body else ({} if op.body is not None else None)
        response = _send(http, op, body, {} if in_body else {field: WRONG})
        if response.status_code != 422 or not _names_field(response, field):
            problems.append(f"{op.name}: {response.status_code} {response.text[:200]}")
    assert problems == []
    assert table_counts(store) == before


def test_the_clients_refuse_an_unknown_argument_by_name(store: ctxbase.Store) -> None:
    with live_server(create_app(store=store)) as url:
        client, aclient = ctxbase.Client(url), ctxbase.AsyncClient(url)
        before = table_counts(store)
        for op in HTTP:
            for target in (client, aclient):
                with pytest.raises(InvalidInputError) as error:
                    _call_library(target, op, **{UNKNOWN: 1})
                assert UNKNOWN in str(error.value), op.name
        for op in [op for op in HTTP if op.body is not None and _typed_field(op)]:
            field = _typed_field(op)
            assert field is not None
            with pytest.raises(InvalidInputError) as error:
                _call_library(client, op, **{field: WRONG})
            assert field in str(error.value), op.name
        assert table_counts(store) == before
        client.close()
