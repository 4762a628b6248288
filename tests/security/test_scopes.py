"""Key scopes: every route, generated from the declarations, refuses a key that lacks its
operation's scope and accepts one that holds it; keys pass on only scopes they hold.

The keys are the operator's unlimited admin keys (every role and project allows every
route), so the scope alone decides. Each route is called twice over a live server: with a
key holding every scope but the route's own (403, the one error shape, naming the scope)
and with a key holding that scope only (anything but 401 and 403: the gate let it
through, and the answer is the route's own — mostly 2xx, with real ids in the path).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.api import OPERATIONS, Operation
from ctxbase.api.scopes import covers, known_scopes
from ctxbase.db.schema import new_id, utcnow
from ctxbase.errors import CtxbaseError
from ctxbase.server import create_app
from ctxbase.server.access import scope_of
from ctxbase.store.base import Scope
from ctxbase.store.jobs import record_job
from ctxbase.transfer.report import MigrationReport, Progress
from tests.live import live_server

API = "/api/v1"
ROUTED = [op for op in OPERATIONS.values() if op.on != "library" and op.rule != "public"]
STREAMS = {op.name for op in ROUTED if op.name.endswith(".stream")}
#: Bodies where the declared example will not do.
BODIES: dict[str, Any] = {
    "keys.create": {"role": "reader", "scopes": ["keys:write"]},
    "embeddings.start_reembed": {"model": "hash:32"},
    "messages.append": {"role": "user", "content": "x"},
    "messages.append_many": [{"role": "user", "content": "x"}],
    "contexts.add": {"name": "n", "content": "c"},
    "contexts.update": {"content": "c2"},
    "memories.add": {"content": "m"},
    "state.put": {"value": 1},
    "search": {"query": "q"},
    "events.append": {"event_type": "e"},
    "events.append_many": {"events": [{"event_type": "e"}]},
    "subscriptions.create": {"agent_id": "scoped"},
    "subscriptions.ack": {"sequence": 0},
    "projects.create": {"slug": "new-project"},
    "conversations.create": {"title": "t"},
}


def test_every_operation_has_a_known_scope() -> None:
    assert len(ROUTED) >= 60
    for op in ROUTED:
        domain, _, kind = op.scope.partition(":")
        assert domain == op.domain and op.scope in known_scopes() and kind in ("read", "write"), (
            op.name
        )
        assert kind == ("read" if op.rule == "read" or op.method == "GET" else "write"), op.name


@dataclass
class World:
    store: ctxbase.Store
    url: str
    ids: dict[str, str]
    config_url: str


def _seed(store: ctxbase.Store, tmp_path: Path) -> dict[str, str]:
    conversation = store.conversations.create(title="t")
    message = store.messages.append(conversation.id, role="user", content="hi")
    reply = store.messages.append(conversation.id, role="assistant", content="hello")
    context = store.contexts.add("c", "content")
    memory = store.memories.add("remember")
    store.state.put("k", 1)
    store.events.append("e")
    subscription = store.subscriptions.create(agent_id="a", delivery="sse")
    config = store.databases.add(name="spare", kind="sqlite", sqlite_path=str(tmp_path / "s.db"))
    job = MigrationReport(
        id=new_id(),
        kind="reembed",
        status="completed",
        source={"model": "hash:64"},
        target={"model": "hash:32"},
        tables=["memory"],
        options={},
        progress=Progress(percent=100.0),
        created_at=utcnow(),
    )
    record_job(store.db, job, {})
    return {
        "project": "default",
        "tenant": "default",
        "conversation_id": str(conversation.id),
        "message_id": str(message.id),
        "reply_id": str(reply.id),
        "context_id": str(context.id),
        "name": context.name,
        "memory_id": str(memory.id),
        "path": "k",
        "subscription_id": str(subscription.id),
        "config_id": str(config.id),
        "job_id": str(job.id),
    }


def _throwaway(
    store: ctxbase.Store, op: Operation, tmp_path: Path, ids: dict[str, str]
) -> dict[str, str]:
    """Records for the operations that delete one, so each deletes its own."""
    n = uuid.uuid4().hex[:8]
    if op.name == "conversations.delete":
        return {"conversation_id": str(store.conversations.create().id)}
    if op.name == "contexts.delete":
        return {"context_id": str(store.contexts.add(f"gone-{n}", "x").id)}
    if op.name == "memories.delete":
        return {"memory_id": str(store.memories.add("gone").id)}
    if op.name == "state.delete":
        store.state.put(f"gone-{n}", 1)
        return {"path": f"gone-{n}"}
    if op.name == "subscriptions.delete":
        return {"subscription_id": str(store.subscriptions.create(agent_id=f"gone-{n}").id)}
    if op.name == "projects.delete":
        return {"project": store.projects.create(f"gone-{n}").slug}
    if op.name == "keys.revoke":
        # (scoped, or a key holding keys:write only would not reach it)
        return {"key_id": str(store.keys.create(role="reader", scopes=["keys:write"]).key_id)}
    if op.name == "databases.delete":
        spare = store.databases.add(name=f"gone-{n}", kind="sqlite", sqlite_path=str(tmp_path))
        return {"config_id": str(spare.id)}
    if op.name == "databases.activate":
        return {"config_id": str(uuid.uuid4())}  # never switch the served database here
    if op.name in _QUALITY_RECORDS:
        return {"record_id": str(_QUALITY_RECORDS[op.name](store, ids).id)}
    return {}


def _pair(ids: dict[str, str]) -> dict[str, str]:
    return {"first_message_id": ids["message_id"], "second_message_id": ids["reply_id"]}


_QUALITY_RECORDS: dict[str, Any] = {
    "quality.delete_metric": lambda store, ids: store.quality.add_metric(
        ids["conversation_id"], metric="m", value=1.0
    ),
    **{
        name: lambda store, ids: store.quality.add_contradiction(
            ids["conversation_id"], description="d", **_pair(ids)
        )
        for name in ("quality.update_contradiction", "quality.delete_contradiction")
    },
    "quality.delete_loop": lambda store, ids: store.quality.add_loop(
        ids["conversation_id"], pattern="p", message_ids=[ids["message_id"]]
    ),
    **{
        name: lambda store, ids: store.quality.add_citation(
            ids["conversation_id"], message_id=ids["message_id"], source_reference="s"
        )
        for name in ("quality.update_citation", "quality.delete_citation")
    },
}


def _body(op: Operation, values: dict[str, str]) -> Any:
    """A body the accepting key can act on: the declared example unless it names records
    that do not exist here or rights this key does not hold."""
    linked = {
        "quality.add_contradiction": {"description": "d", **_pair(values)},
        "quality.add_loop": {"pattern": "p", "message_ids": [values["message_id"]]},
        "quality.add_citation": {"message_id": values["message_id"], "source_reference": "s"},
    }
    if op.name in linked:
        return linked[op.name]
    body = BODIES.get(op.name, op.request_example)
    return {} if body is None and op.method in ("POST", "PUT", "PATCH") else body


def _path(op: Operation, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        return values.get(match.group(1), str(uuid.uuid4()))

    return API + re.sub(r"{(\w+)(?::path)?}", fill, op.path)


@pytest.fixture
def world(store: ctxbase.Store, tmp_path: Path) -> Iterator[World]:
    ids = _seed(store, tmp_path)
    settings = store.settings.model_copy(
        update={"auth": "required", "rate_limit_per_minute": 1_000_000}
    )
    with live_server(create_app(store=store, settings=settings)) as url:
        yield World(store, url, ids, str(tmp_path))


def _call(world: World, op: Operation, key: str, values: dict[str, str]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    request = {"headers": headers, "timeout": 30}
    if op.method in ("POST", "PUT", "PATCH"):
        request["json"] = _body(op, values)
    if op.name in STREAMS:  # read the status, leave the stream
        with httpx.stream(op.method, world.url + _path(op, values), **request) as response:
            if response.status_code != 200:
                response.read()
            return response
    return httpx.request(op.method, world.url + _path(op, values), **request)


def test_every_route_refuses_a_key_lacking_its_scope_and_accepts_one_holding_it(
    world: World, tmp_path: Path
) -> None:
    store = world.store
    wrong, statuses = [], {}
    for op in ROUTED:
        values = {**world.ids, **_throwaway(store, op, tmp_path, world.ids)}
        others = sorted(known_scopes() - {op.scope})
        lacking = store.keys.create(role="admin", scopes=others, name=f"no {op.scope}").key
        holding = store.keys.create(role="admin", scopes=[op.scope], name=op.scope).key

        refused = _call(world, op, lacking, values)
        error = refused.json().get("error") if refused.status_code == 403 else None
        if (
            error is None
            or set(error) != {"code", "message", "details"}
            or error["code"] != "permission_denied"
            or error["details"]["scope"] != op.scope
            or op.scope not in error["message"]
        ):
            wrong.append(f"{op.name} without {op.scope}: {refused.status_code} {refused.text}")

        accepted = _call(world, op, holding, values)
        statuses[op.name] = accepted.status_code
        if accepted.status_code in (401, 403):
            wrong.append(f"{op.name} with {op.scope}: {accepted.status_code} {accepted.text}")
    assert not wrong, "\n".join(wrong)
    succeeded = [name for name, status in statuses.items() if status < 300]
    # No such id here: a configuration to activate, a job, a dead letter to retry.
    absent = {"databases.activate", "subscriptions.retry_dead_letters"}
    absent |= {op.name for op in ROUTED if op.name.startswith("migrations.")} - {"migrations.list"}
    assert set(statuses) - set(succeeded) <= absent, statuses


def test_wildcards_and_roles(world: World) -> None:
    store = world.store

    def status(key: str, name: str) -> int:
        return _call(world, OPERATIONS[name], key, world.ids).status_code

    family = store.keys.create(role="writer", scopes=["memories:*"]).key
    assert status(family, "memories.add") == 201 and status(family, "memories.list") == 200
    assert status(family, "search") == 403 and status(family, "events.append") == 403
    reading = store.keys.create(role="admin", scopes=["*:read"]).key
    assert status(reading, "memories.list") == 200 and status(reading, "keys.list") == 200
    assert status(reading, "search") == 200 and status(reading, "audit.list") == 200
    assert status(reading, "memories.add") == 403 and status(reading, "keys.create") == 403
    everything = store.keys.create(role="writer", scopes=["*:*"]).key
    assert status(everything, "events.append") == 201 and status(everything, "search") == 200
    # The role still applies: a reader holding a write scope writes nothing.
    reader = store.keys.create(role="reader", scopes=["memories:write"]).key
    answer = _call(world, OPERATIONS["memories.add"], reader, world.ids)
    assert answer.status_code == 403 and "writer" in answer.json()["error"]["message"]


def test_resuming_a_subscription_stream_acknowledges_so_it_needs_the_write_scope(
    world: World,
) -> None:
    store = world.store
    path = _path(OPERATIONS["subscriptions.stream"], world.ids)
    read_only = store.keys.create(role="writer", scopes=["subscriptions:read"]).key
    both = store.keys.create(role="writer", scopes=["subscriptions:*"]).key
    reader = store.keys.create(role="reader").key
    resume = {"Last-Event-ID": "1"}
    for key, want in ((read_only, 403), (reader, 403), (both, 200)):
        headers = {"Authorization": f"Bearer {key}", **resume}
        with httpx.stream("GET", world.url + path, headers=headers, timeout=30) as response:
            assert response.status_code == want, key
    cursor = store.subscriptions.get(world.ids["subscription_id"]).cursor
    assert cursor == 1  # acknowledged by the one key allowed to


def test_a_scope_lacking_on_a_stream_is_refused_before_it_starts(world: World) -> None:
    key = world.store.keys.create(role="admin", scopes=["memories:read"]).key
    for name in sorted(STREAMS):
        answer = _call(world, OPERATIONS[name], key, world.ids)
        assert answer.status_code == 403, name


# --- keys pass on only the scopes they hold, through the library and REST alike -------------

CALLER_SCOPES: tuple[list[str] | None, ...] = (
    None,
    ["keys:*", "memories:read"],
    ["keys:write", "keys:read", "memories:*", "search:read"],
    ["*:*"],
    ["keys:write", "*:read"],
)
REQUESTED: tuple[list[str] | None, ...] = (
    None,
    ["memories:read"],
    ["memories:*"],
    ["memories:write", "search:read"],
    ["*:read"],
    ["keys:read"],
    ["events:write"],
)


def _holds(caller: list[str] | None, requested: list[str] | None) -> bool:
    if caller is None:
        return True
    if requested is None:
        return False
    return all(any(covers(held, wanted) for held in caller) for wanted in requested)


@pytest.fixture(params=["library", "rest"])
def interface(request: pytest.FixtureRequest, store: ctxbase.Store) -> Iterator[Any]:
    if request.param == "library":
        yield None
        return
    settings = store.settings.model_copy(
        update={"auth": "required", "rate_limit_per_minute": 1_000_000}
    )
    with TestClient(create_app(store=store, settings=settings)) as client:
        yield client


def _create(store: ctxbase.Store, client: TestClient | None, key: str, body: dict) -> int:
    if client is None:
        principal = store.keys.authenticate(key)
        assert principal is not None
        try:
            store.scoped(scope_of(principal)).keys.create(**body)
        except CtxbaseError as error:
            return error.http_status
        return 201
    return client.post(
        f"{API}/keys", json=body, headers={"Authorization": f"Bearer {key}"}
    ).status_code


def test_keys_create_only_keys_with_scopes_they_hold(
    store: ctxbase.Store, interface: TestClient | None
) -> None:
    wrong = []
    for caller, requested in itertools.product(CALLER_SCOPES, REQUESTED):
        key = store.keys.create(role="admin", scopes=caller).key
        got = _create(store, interface, key, {"role": "reader", "scopes": requested})
        want = 201 if _holds(caller, requested) else 403
        if got != want:
            wrong.append(f"{caller} creating {requested}: {got}, expected {want}")
    assert not wrong, "\n".join(wrong)
    unknown = store.keys.create(role="admin").key
    for bad in (["memory:read"], ["search:write"], ["memories"], ["memories:delete"], ["*"]):
        assert _create(store, interface, unknown, {"role": "reader", "scopes": bad}) == 422, bad


def test_listed_keys_show_their_scopes_and_a_scoped_admin_reaches_only_keys_it_covers(
    store: ctxbase.Store,
) -> None:
    store.keys.create(role="reader", name="all")
    narrow = store.keys.create(role="reader", scopes=["memories:read"], name="narrow")
    wide = store.keys.create(role="reader", scopes=["events:*"], name="wide")
    admin = store.keys.create(role="admin", scopes=["keys:*", "memories:*"], name="admin")
    listed = {k.name: k.scopes for k in store.keys.list().items}
    assert listed == {
        "all": None,
        "narrow": ["memories:read"],
        "wide": ["events:*"],
        "admin": ["keys:*", "memories:*"],
    }
    principal = store.keys.authenticate(admin.key)
    assert principal is not None and principal.scopes == {"keys:*", "memories:*"}
    view = store.scoped(scope_of(principal))
    assert {k.name for k in view.keys.list().items} == {"narrow", "admin"}
    with pytest.raises(ctxbase.errors.NotFoundError):
        view.keys.revoke(wide.key_id)
    assert view.keys.revoke(narrow.key_id).revoked_at is not None
    audit = store.audit.list(action="key.create").items
    assert {tuple(e.details["scopes"] or ()) for e in audit} >= {("memories:read",), ()}


def test_keys_without_scopes_keep_working(store: ctxbase.Store) -> None:
    """A key made before scopes (an empty list stored) holds every scope."""
    key = store.keys.create(role="admin", scopes=[])
    assert key.scopes is None
    principal = store.keys.authenticate(key.key)
    assert principal is not None and principal.scopes is None
    assert scope_of(principal) == Scope(
        tenant="default", projects=None, server_admin=True, role="admin", scopes=None
    )
