"""Hostile input on every route, generated from the API declarations, on each backend.

For every operation with a body model and a route (``ctxbase.api.OPERATIONS``), each text
and JSON field of the body gets a lone surrogate (valid JSON, not valid Unicode) and a NUL,
each numeric field an integer past 64 bits; every query parameter and the ``If-Match`` and
``Last-Event-ID`` headers get the same. Each request must answer 4xx with the one error
shape, naming the field, and write nothing. One store per backend; the failures of all
operations are collected and listed together.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import ctxbase
from ctxbase.api import API_PREFIX, OPERATIONS, Operation
from ctxbase.db.schema import metadata
from ctxbase.server import create_app
from tests.conftest import open_store
from tests.postgres import PostgresServer

SURROGATE = "\ud800"
NUL = "a\x00b"
HUGE = 2**64 + 1
#: JSON text as a hostile client writes it: json.dumps escapes the surrogate as \ud800.
TEXT_POISONS: tuple[Any, ...] = (SURROGATE, f"ok {SURROGATE}", NUL)
JSON_POISONS: tuple[Any, ...] = (
    {"k": SURROGATE},
    {SURROGATE: "v"},
    {"k": [NUL]},
    {"n": HUGE},
)
INTEGER_POISONS: tuple[Any, ...] = (HUGE, -HUGE)
#: A float field takes 2^64 as a float; what it must refuse is what no backend stores.
FLOAT_POISONS: tuple[Any, ...] = (float("inf"), float("-inf"), float("nan"))


# --- one store and one app per backend -----------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hostile_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ctxbase.Store]:
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres")
        template = request.getfixturevalue("postgres_template")
        with server.database(template=template) as url, open_store(url) as store:
            yield store
    else:
        path = tmp_path_factory.mktemp("adversarial") / "ctxbase.db"
        with open_store(f"sqlite:///{path}") as store:
            yield store


@pytest.fixture(scope="module")
def targets(hostile_store: ctxbase.Store) -> dict[str, str]:
    """A real record behind every path parameter, so a request reaches its checks."""
    store = hostile_store
    chat = store.conversations.create(title="target")
    message = store.messages.append(chat.id, role="user", content="hello")
    unit = store.contexts.add("unit", "content")
    memory = store.memories.add("a memory")
    subscription = store.subscriptions.create(agent_id="agent")
    store.state.put("k", {"v": 1}, namespace="ns")
    store.tenants.create("acme")
    config = store.databases.add(name="spare", kind="sqlite", sqlite_path="/tmp/spare.db")
    key = store.keys.create(role="reader")
    return {
        "project": "default",
        "tenant": "acme",
        "conversation_id": str(chat.id),
        "message_id": str(message.id),
        "context_id": str(unit.id),
        "memory_id": str(memory.id),
        "subscription_id": str(subscription.id),
        "config_id": str(config.id),
        "key_id": str(key.key_id),
        "job_id": "00000000-0000-0000-0000-000000000000",
        "record_id": str(store.quality.add_metric(chat.id, metric="m", value=1).id),
        "path": "ns/k",
        "name": "unit",
    }


@pytest.fixture(scope="module")
def client(hostile_store: ctxbase.Store) -> Iterator[TestClient]:
    with TestClient(create_app(store=hostile_store), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    return dict(client.get(f"{API_PREFIX}/openapi.json").json())


def _routed(op: Operation) -> bool:
    return op.on != "library"


def _url(op: Operation, targets: dict[str, str]) -> str:
    path = op.route_key[1]
    for name in op.path_params:
        path = path.replace("{" + name + "}", targets[name])
    return API_PREFIX + path


def _digest(store: ctxbase.Store) -> str:
    """Every row of every table: what a write would change."""
    digest = hashlib.sha256()
    with store.db.read() as connection:
        for table in metadata.sorted_tables:
            rows = connection.execute(select(table)).all()
            digest.update(table.name.encode())
            for row in sorted(repr(tuple(r)) for r in rows):
                digest.update(row.encode())
    return digest.hexdigest()


# --- walking a body's schema ---------------------------------------------------------------


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:  # X | None
        return _resolve(branches[0], spec)
    return schema


def _kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if kind in ("string", "integer", "number", "boolean", "array"):
        return str(kind)
    if kind == "object" and "properties" not in schema:
        return "json"
    if "properties" in schema:
        return "model"
    return "json"  # no type: any JSON value


def _poisons(
    schema: dict[str, Any], spec: dict[str, Any], where: tuple[Any, ...]
) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path in the body, hostile value) for every field under ``schema``."""
    schema = _resolve(schema, spec)
    kind = _kind(schema)
    if kind == "model":
        for name, field in schema["properties"].items():
            yield from _poisons(field, spec, (*where, name))
    elif kind == "string":
        for value in TEXT_POISONS:
            yield where, value
    elif kind == "integer":
        for value in INTEGER_POISONS:
            yield where, value
    elif kind == "number":
        for value in FLOAT_POISONS:
            yield where, value
    elif kind == "json":
        for value in (*JSON_POISONS, SURROGATE):
            yield where, value
    elif kind == "array":
        item = _resolve(schema.get("items", {}), spec)
        if _kind(item) == "model":
            yield from _poisons(item, spec, (*where, 0))
        else:
            for path, value in _poisons(item, spec, ()):
                yield where, [value] if not path else None
    # booleans: nothing textual or numeric to break


def _with(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    body = copy.deepcopy(body)
    node = body
    for step, following in itertools.pairwise(path):
        if isinstance(node, list):
            while len(node) <= step:
                node.append({})
            node = node[step]
        else:
            if not isinstance(node.get(step), dict | list):
                node[step] = [] if isinstance(following, int) else {}
            node = node[step]
    node[path[-1]] = value
    return body


def _base_body(op: Operation) -> dict[str, Any]:
    example = op.request_example
    assert isinstance(example, dict), f"{op.name} declares no example body"
    return dict(example)


def _body_schema(op: Operation, spec: dict[str, Any]) -> dict[str, Any]:
    assert op.body is not None
    return {"$ref": f"#/components/schemas/{op.body.__name__}"}


def _send(client: TestClient, op: Operation, url: str, **kwargs: Any) -> Any:
    return client.request(op.method, url, **kwargs)


def _problem(response: Any, field: str | None) -> str | None:
    """Why an answer to hostile input is wrong, or None when it is right."""
    if not 400 <= response.status_code < 500:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]}"
    if set(body) != {"error"} or set(body["error"]) != {"code", "message", "details"}:
        return f"not the error shape: {body}"
    if field is not None and field not in json.dumps(body["error"]):
        return f"the error does not name {field!r}: {body['error']['message'][:200]}"
    return None


# --- the suite -----------------------------------------------------------------------------

BODY_OPERATIONS = [op for op in OPERATIONS.values() if op.body is not None and _routed(op)]
QUERY_OPERATIONS = [op for op in OPERATIONS.values() if op.query is not None and _routed(op)]


def test_every_write_route_refuses_surrogates_nuls_and_huge_numbers(
    hostile_store: ctxbase.Store,
    client: TestClient,
    targets: dict[str, str],
    openapi: dict[str, Any],
) -> None:
    failures: list[str] = []
    sent = 0
    for op in BODY_OPERATIONS:
        url = _url(op, targets)
        base = _base_body(op)
        before = _digest(hostile_store)
        for path, value in _poisons(_body_schema(op, openapi), openapi, ()):
            if value is None:
                continue
            body = _with(base, path, value)
            # json.dumps escapes the surrogate as \ud800 and writes Infinity and NaN, as a
            # careless client would.
            content = json.dumps(body)
            response = _send(
                client, op, url, content=content, headers={"Content-Type": "application/json"}
            )
            sent += 1
            problem = _problem(response, str(path[0]))
            if problem:
                failures.append(f"{op.name} {'.'.join(map(str, path))}={value!r}: {problem}")
        if op.rule != "read" and _digest(hostile_store) != before:  # reads count accesses
            failures.append(f"{op.name}: hostile requests changed the database")
    assert sent > 100  # the walk found the fields
    assert failures == [], "\n".join(failures)


def test_every_query_parameter_refuses_nuls_and_huge_numbers(
    client: TestClient, targets: dict[str, str], openapi: dict[str, Any]
) -> None:
    failures: list[str] = []
    for op in QUERY_OPERATIONS:
        assert op.query is not None
        url = _url(op, targets)
        for name, field in op.query.model_fields.items():
            annotation = repr(field.annotation)
            if "dict" in annotation:  # a JSON object in the query string
                values: tuple[Any, ...] = (json.dumps({"k": NUL}), json.dumps({"n": HUGE}))
            elif "int" in annotation:
                values = (str(HUGE), str(-HUGE))
            elif "str" in annotation:
                values = (NUL,)  # a surrogate cannot cross a URL: it arrives as U+FFFD
            else:
                continue
            for value in values:
                response = client.request(op.method, url, params={name: value})
                problem = _problem(response, None)
                if problem:
                    failures.append(f"{op.name} ?{name}={value!r}: {problem}")
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("version", [str(2**31), str(2**63), str(HUGE), "-1", "٣"])
def test_if_match_past_any_version_is_bad_input(
    hostile_store: ctxbase.Store, client: TestClient, version: str
) -> None:
    url = f"{API_PREFIX}/projects/default/state/ns/k"
    before = _digest(hostile_store)
    put = client.put(url, json={"value": 2}, headers={"If-Match": f'"{version}"'.encode()})
    delete = client.delete(url, headers={"If-Match": version.encode()})
    for response in (put, delete):
        assert response.status_code == 422, response.text
        assert _problem(response, "If-Match") is None
    assert _digest(hostile_store) == before


@pytest.mark.timeout(30)  # a stream that took the header would follow for ever
@pytest.mark.parametrize(
    "last_event_id", [str(HUGE), str(2**63), str(2**62 + 1), "-1", "seven", "+5", "1_000"]
)
def test_last_event_id_past_any_sequence_is_bad_input(
    hostile_store: ctxbase.Store, client: TestClient, last_event_id: str
) -> None:
    """A stream resumed after no sequence there can be is refused before it starts."""
    before = _digest(hostile_store)
    response = client.get(
        f"{API_PREFIX}/projects/default/events/stream",
        headers={"Last-Event-ID": last_event_id},
    )
    assert response.status_code == 422, response.text
    assert _problem(response, "Last-Event-ID") is None
    assert response.json()["error"]["code"] == "invalid_input"
    assert _digest(hostile_store) == before


def test_nul_in_path_parameters_is_refused(client: TestClient, targets: dict[str, str]) -> None:
    failures = []
    for op in OPERATIONS.values():
        if not _routed(op) or not op.path_params or op.name.endswith("stream"):
            continue
        for name in op.path_params:
            hostile = {**targets, name: targets[name] + "%00x"}
            response = client.request(op.method, _url(op, hostile), json=op.request_example)
            problem = _problem(response, None)
            if problem:
                failures.append(f"{op.name} {{{name}}} with NUL: {problem}")
    assert failures == [], "\n".join(failures)


def test_library_calls_refuse_the_same(hostile_store: ctxbase.Store) -> None:
    """The Store checks what it is given as the server does (no HTTP in between)."""
    store = hostile_store
    cases = {
        "memories.add metadata": lambda: store.memories.add("m", metadata={"k": SURROGATE}),
        "events.append data": lambda: store.events.append("e", {"k": SURROGATE}),
        "state.put value": lambda: store.state.put("k2", SURROGATE),
        "state.put version": lambda: store.state.put("k2", 1, expected_version=HUGE),
        "state.delete version": lambda: store.state.delete("k", expected_version=HUGE),
        "events.list after": lambda: store.events.list(after=HUGE),
        "contexts.get_version": lambda: store.contexts.get_version("unit", HUGE),
        "databases.add database": lambda: store.databases.add(
            name="nul", kind="postgresql", database=NUL
        ),
        "databases.add host": lambda: store.databases.add(
            name="nul", kind="postgresql", database="d", host=NUL
        ),
    }
    before = _digest(store)
    wrong = []
    for name, call in cases.items():
        try:
            call()
            wrong.append(f"{name}: accepted")
        except ctxbase.InvalidInputError:
            pass
        except Exception as error:
            wrong.append(f"{name}: {type(error).__name__}: {error}")
    assert wrong == []
    assert _digest(store) == before


def test_the_suite_covers_the_declared_write_routes() -> None:
    names = {op.name for op in BODY_OPERATIONS}
    assert {"memories.add", "events.append", "state.put", "databases.add"} <= names
    assert len(names) >= 15
