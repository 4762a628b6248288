"""Nobody sees what is not theirs: every route of the OpenAPI document, walked with keys of
every kind. A route added without an access rule fails here."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.api import OPERATIONS
from ctxbase.server import access, create_app

API = "/api/v1"
_P = "/api/v1/projects/{project}"
_Q = f"{_P}/conversations/{{conversation_id}}/quality"
#: A valid body for each operation that takes one ({} where every field is optional), so
#: that the answers below come from access control, not from validation.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", f"{_P}/conversations/{{conversation_id}}/messages"): {"role": "user", "content": "x"},
    ("POST", f"{_P}/contexts"): {"name": "n", "content": "c"},
    ("PUT", f"{_P}/contexts/{{context_id}}"): {"content": "c2"},
    ("POST", f"{_P}/memories"): {"content": "m"},
    ("PUT", f"{_P}/state/{{path}}"): {"value": 1},
    ("POST", f"{_P}/search"): {"query": "q"},
    ("POST", f"{_P}/recall"): {"query": "q"},
    ("POST", f"{_P}/events"): {"event_type": "e"},
    ("POST", f"{_P}/subscriptions"): {"agent_id": "a"},
    ("POST", f"{_P}/subscriptions/{{subscription_id}}/ack"): {"sequence": 0},
    ("POST", f"{_P}/import"): {"rows": []},
    ("POST", "/api/v1/projects"): {"slug": "new-project"},
    ("POST", "/api/v1/keys"): {"role": "reader"},
    ("POST", "/api/v1/tenants"): {"slug": "new-tenant"},
    ("POST", f"{_Q}/metrics"): {"metric": "m", "value": 1},
    ("POST", f"{_Q}/contradictions"): {
        "first_message_id": str(uuid.uuid4()),
        "second_message_id": str(uuid.uuid4()),
        "description": "d",
    },
    ("POST", f"{_Q}/loops"): {"pattern": "p", "message_ids": [str(uuid.uuid4())]},
    ("POST", f"{_Q}/citations"): {"message_id": str(uuid.uuid4()), "source_reference": "s"},
}


def _declared_example(method: str, path: str) -> Any:
    """The declaration's example body of a route that BODIES does not list ({} if none)."""
    for declared in OPERATIONS.values():
        if declared.route_key == (method, path.removeprefix(API)):
            return declared.request_example or {}
    return {}


@dataclass
class World:
    client: TestClient
    keys: dict[str, str]
    ids: dict[str, dict[str, str]]  # project slug -> {parameter name: a real id in it}
    operations: list[tuple[str, str]]


def _seed(store: ctxbase.Store, project: str) -> dict[str, str]:
    """One record of every kind in ``project`` (of the store view's tenant)."""
    conversation = store.conversations.create(title="t", project=project)
    message = store.messages.append(conversation.id, role="user", content="hi", project=project)
    context = store.contexts.add("c", "content", project=project)
    memory = store.memories.add("remember", project=project)
    store.state.put("k", 1, project=project)
    subscription = store.subscriptions.create(agent_id="a", project=project)
    return {
        "conversation_id": str(conversation.id),
        "message_id": str(message.id),
        "context_id": str(context.id),
        "name": context.name,
        "memory_id": str(memory.id),
        "subscription_id": str(subscription.id),
        "path": "k",
    }


@pytest.fixture
def world(store: ctxbase.Store) -> Iterator[World]:
    store.tenants.create("acme")
    store.tenants.create("globex")
    acme = store.scoped(ctxbase.store.base.Scope(tenant="acme", server_admin=False))
    globex = store.scoped(ctxbase.store.base.Scope(tenant="globex", server_admin=False))
    for view, slug in ((acme, "alpha"), (acme, "beta"), (globex, "bravo")):
        view.projects.create(slug)
    ids = {slug: _seed(view, slug) for view, slug in ((acme, "beta"), (globex, "bravo"))}
    keys = {
        "operator": store.keys.create(role="admin").key,
        "admin": store.keys.create(tenant="acme", role="admin").key,
        "writer": store.keys.create(tenant="acme", role="writer").key,
        "reader": store.keys.create(tenant="acme", role="reader").key,
        "alpha-only": store.keys.create(tenant="acme", role="admin", projects=["alpha"]).key,
        "globex": store.keys.create(tenant="globex", role="admin").key,
    }
    b_key = store.keys.list(tenant="globex").items[0]
    ids["bravo"]["key_id"] = str(b_key.key_id)
    settings = store.settings.model_copy(
        update={"auth": "required", "rate_limit_per_minute": 1_000_000}
    )
    app = create_app(store=store, settings=settings)
    operations = [
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    ]
    with TestClient(app) as client:
        yield World(client, keys, ids, operations)


def _path(template: str, project: str, ids: dict[str, str], tenant: str = "globex") -> str:
    values = {"project": project, "tenant": tenant, **ids}

    def fill(match: re.Match[str]) -> str:
        return values.get(match.group(1), str(uuid.uuid4()))

    return re.sub(r"\{(\w+)\}", fill, template)


def _call(
    world: World, method: str, path: str, key: str | None, template: str | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {world.keys[key]}"} if key else {}
    body = (
        BODIES.get((method, template or path), _declared_example(method, template or path))
        if method in ("POST", "PUT", "PATCH")
        else None
    )
    return world.client.request(method, path, headers=headers, json=body)


def _rule(method: str, path: str) -> access.Rule:
    return access.RULES[(method, path.removeprefix(API))]


def test_every_route_has_a_rule(world: World) -> None:
    missing = [
        f"{m} {p}" for m, p in world.operations if (m, p.removeprefix(API)) not in access.RULES
    ]
    assert not missing, f"routes without an access rule in ctxbase.server.access: {missing}"
    stale = set(access.RULES) - {(m, p.removeprefix(API)) for m, p in world.operations}
    assert not stale, f"rules for routes that do not exist: {stale}"


def test_no_key_is_401(world: World) -> None:
    for method, template in world.operations:
        path = _path(template, "bravo", world.ids["bravo"])
        response = _call(world, method, path, None, template)
        if _rule(method, template) == "public":
            assert response.status_code != 401, template
        else:
            assert response.status_code == 401, (method, template, response.text)
            assert response.json()["error"]["code"] == "unauthenticated"
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_another_tenants_resources_are_404(world: World) -> None:
    checked = 0
    for method, template in world.operations:
        rule = _rule(method, template)
        concerns_a_tenant = any(p in template for p in ("{project}", "{tenant}", "{key_id}"))
        if rule in ("public", "server") or not concerns_a_tenant:
            continue
        path = _path(template, "bravo", world.ids["bravo"])
        response = _call(world, method, path, "admin", template)  # acme's admin: all roles
        assert response.status_code == 404, (method, path, response.text)
        checked += 1
        if method == "GET" and not template.endswith("/stream"):
            # Control: globex's own key gets them, so the 404 above is not a bad request.
            own = _call(world, method, path, "globex", template)
            assert own.status_code == 200, (method, path, own.text)
    assert checked >= 40


def test_readers_cannot_write_and_non_admins_cannot_administer(world: World) -> None:
    for method, template in world.operations:
        rule = _rule(method, template)
        path = _path(template, "alpha", {}, tenant="acme")  # acme's own project
        forbidden_for = {
            "read": (),
            "public": (),
            "write": ("reader",),
            "admin": ("reader", "writer"),
            "server": ("reader", "writer", "admin", "globex"),
        }[rule]
        for key in forbidden_for:
            response = _call(world, method, path, key, template)
            assert response.status_code == 403, (key, method, path, response.text)
            assert response.json()["error"]["code"] == "permission_denied"


def test_a_key_limited_to_a_project_sees_no_other(world: World) -> None:
    checked = 0
    for method, template in world.operations:
        if "{project}" not in template:
            continue
        path = _path(template, "beta", world.ids["beta"], tenant="acme")  # same tenant
        response = _call(world, method, path, "alpha-only", template)
        assert response.status_code == 404, (method, path, response.text)
        checked += 1
    assert checked >= 40
    listed = _call(world, "GET", f"{API}/projects", "alpha-only").json()["items"]
    assert [p["slug"] for p in listed] == ["alpha"]


def test_lists_hold_only_the_callers_tenant(world: World) -> None:
    projects = _call(world, "GET", f"{API}/projects", "admin").json()["items"]
    assert {p["slug"] for p in projects} == {"alpha", "beta"}
    keys = _call(world, "GET", f"{API}/keys", "admin").json()["items"]
    assert {k["tenant"] for k in keys} == {"acme"}
    assert _call(world, "GET", f"{API}/keys?tenant=globex", "admin").status_code == 404
    everyone = _call(world, "GET", f"{API}/keys", "operator").json()["items"]
    assert {k["tenant"] for k in everyone} == {"default", "acme", "globex"}
    assert all("key" not in k and "key_hash" not in k for k in everyone)
    audit = _call(world, "GET", f"{API}/audit", "admin").json()["items"]
    assert {(e["action"], e["target"][:4]) for e in audit} == {
        ("tenant.create", "acme"),
        ("key.create", "cbk_"),
    }
    assert len({e["tenant_id"] for e in audit}) == 1  # acme's only
    assert len(_call(world, "GET", f"{API}/audit", "operator").json()["items"]) > len(audit)


def test_deactivating_a_tenant_stops_its_keys_at_once(world: World) -> None:
    before = _call(world, "GET", f"{API}/projects", "admin")
    assert before.status_code == 200
    done = world.client.patch(
        f"{API}/tenants/acme",
        json={"is_active": False},
        headers={"Authorization": f"Bearer {world.keys['operator']}"},
    )
    assert done.status_code == 200 and done.json()["is_active"] is False
    assert _call(world, "GET", f"{API}/projects", "admin").status_code == 401
    assert _call(world, "GET", f"{API}/projects", "globex").status_code == 200
    entries = _call(world, "GET", f"{API}/audit?action=tenant.deactivate", "operator").json()
    assert [e["target"] for e in entries["items"]] == ["acme"]
    assert entries["items"][0]["actor"].startswith("key:cbk_")
