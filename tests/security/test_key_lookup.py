"""Keys over HTTP: looked up once per process, refused at once everywhere when revoked,
checked before any body is read, and not throttled below what one healthy client sends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

import ctxbase
from ctxbase.config import Settings
from ctxbase.db.schema import utcnow
from ctxbase.server import create_app
from ctxbase.server.access import KEY_FIRST_METHODS
from ctxbase.server.ratelimit import KeyRateLimiter
from ctxbase.store.tenancy import Keys, keys_table
from tests.conftest import open_store

API = "/api/v1"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def two_servers(persistent_database_url: str) -> Iterator[tuple[Any, TestClient, TestClient]]:
    """Two server processes' apps, each with its own Store, on one database."""
    with ExitStack() as stack:
        stores = [stack.enter_context(open_store(persistent_database_url)) for _ in range(2)]
        clients = []
        for store in stores:
            settings = store.settings.model_copy(update={"auth": "required"})
            app = create_app(store=store, settings=settings)
            clients.append(stack.enter_context(TestClient(app)))
        yield stores[0], clients[0], clients[1]


class LookupCounter:
    """Counts the database lookups of keys (the real method runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = Keys.authenticate

        def counted(keys: Keys, key: str) -> Any:
            self.calls += 1
            return real(keys, key)

        monkeypatch.setattr(Keys, "authenticate", counted)


def test_a_key_is_looked_up_once_then_served_from_memory(
    two_servers: tuple[Any, TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, first, _ = two_servers
    key = store.keys.create(role="reader").key
    lookups = LookupCounter(monkeypatch)
    for _ in range(20):
        assert first.get(f"{API}/projects", headers=_auth(key)).status_code == 200
    assert lookups.calls == 1
    wrong = key[:-4] + "XXXX"
    for _ in range(3):  # unknown keys are never cached: each try is counted and looked up
        assert first.get(f"{API}/projects", headers=_auth(wrong)).status_code == 401
    assert lookups.calls == 4


def test_a_revoked_key_stops_at_once_on_every_process(
    two_servers: tuple[Any, TestClient, TestClient],
) -> None:
    store, first, second = two_servers
    admin = store.keys.create(role="admin").key
    victim = store.keys.create(role="writer")
    for client in (first, second):  # both processes have it in memory now
        assert client.get(f"{API}/projects", headers=_auth(victim.key)).status_code == 200
    revoked = first.delete(f"{API}/keys/{victim.key_id}", headers=_auth(admin))
    assert (revoked.status_code, revoked.content) == (204, b"")
    assert second.get(f"{API}/projects", headers=_auth(victim.key)).status_code == 401
    assert first.get(f"{API}/projects", headers=_auth(victim.key)).status_code == 401
    # Other keys keep working, and are looked up again after the change.
    assert second.get(f"{API}/projects", headers=_auth(admin)).status_code == 200


def test_a_revocation_through_the_library_reaches_every_server(
    two_servers: tuple[Any, TestClient, TestClient],
) -> None:
    store, first, second = two_servers
    victim = store.keys.create(role="reader")
    for client in (first, second):
        assert client.get(f"{API}/projects", headers=_auth(victim.key)).status_code == 200
    store.keys.revoke(victim.key_id)
    for client in (first, second):
        assert client.get(f"{API}/projects", headers=_auth(victim.key)).status_code == 401


def test_a_deactivated_tenant_and_new_quotas_reach_every_server(
    two_servers: tuple[Any, TestClient, TestClient],
) -> None:
    store, first, second = two_servers
    operator = store.keys.create(role="admin").key
    store.tenants.create("acme")
    acme = store.keys.create(tenant="acme", role="reader").key
    assert second.get(f"{API}/projects", headers=_auth(acme)).status_code == 200
    patched = first.patch(
        f"{API}/tenants/acme",
        json={"quotas": {"requests_per_minute": 1}},
        headers=_auth(operator),
    )
    assert patched.status_code == 200
    assert second.get(f"{API}/projects", headers=_auth(acme)).status_code == 200
    assert second.get(f"{API}/projects", headers=_auth(acme)).status_code == 429
    first.patch(f"{API}/tenants/acme", json={"is_active": False}, headers=_auth(operator))
    assert second.get(f"{API}/projects", headers=_auth(acme)).status_code == 401


def test_a_cached_key_stops_when_it_expires(
    two_servers: tuple[Any, TestClient, TestClient],
) -> None:
    store, first, _ = two_servers
    created = store.keys.create(role="reader", expires_in_days=1)
    soon = utcnow() + timedelta(seconds=1)
    with store.db.connect(write=True) as connection:  # a key about to expire
        connection.execute(
            update(keys_table).where(keys_table.c.key_id == created.key_id).values(expires_at=soon)
        )
    assert first.get(f"{API}/projects", headers=_auth(created.key)).status_code == 200
    time.sleep(max(0.0, (soon - utcnow()).total_seconds()) + 0.05)
    assert first.get(f"{API}/projects", headers=_auth(created.key)).status_code == 401


# --- the key before the body --------------------------------------------------------------


def test_no_key_is_401_whatever_the_body(store: ctxbase.Store) -> None:
    settings = store.settings.model_copy(
        update={"auth": "required", "auth_failures_per_minute": 10_000}
    )
    app = create_app(store=store, settings=settings)
    routes = [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method.upper() in KEY_FIRST_METHODS
    ]
    assert len(routes) > 20
    valid = store.keys.create(role="admin").key
    with TestClient(app) as client:
        for method, template in routes:
            path = template.replace("{project}", "default").replace("{path}", "k/v")
            path = path.format_map(_AnyId())
            for body in (b"{not json", b'{"unknown": [1, 2'):
                for headers in ({}, _auth("cbk_wrong_" + "x" * 40)):
                    answer = client.request(
                        method,
                        path,
                        content=body,
                        headers={"Content-Type": "application/json", **headers},
                    )
                    assert answer.status_code == 401, (method, path, answer.text)
                    assert answer.json()["error"]["code"] == "unauthenticated"
        # Control: with a valid key, the same malformed body is a bad request.
        answer = client.post(
            f"{API}/projects/default/memories",
            content=b"{not json",
            headers={"Content-Type": "application/json", **_auth(valid)},
        )
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"


class _AnyId(dict[str, str]):
    def __missing__(self, name: str) -> str:
        return "0190a0a0-0000-7000-8000-000000000000"


# --- the default rate ---------------------------------------------------------------------


def test_the_default_rate_does_not_throttle_one_busy_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One client sending 1,000 requests a second for a minute (more than one server
    process answers) is never refused by the default limit."""
    clock = [0.0]
    monkeypatch.setattr("ctxbase.server.ratelimit.time.monotonic", lambda: clock[0])
    limiter = KeyRateLimiter(Settings().rate_limit_per_minute)
    refused = 0
    for _ in range(60_000):
        clock[0] += 0.001
        refused += limiter.take("one key") > 0
    assert refused == 0
    runaway = sum(limiter.take("one key") > 0 for _ in range(200_000))  # all at once
    assert runaway > 0  # a runaway client still meets the limit
