"""The multi-agent context broker (reference system 001) moves in.

Its guide keeps an event-sourced stream per project, semantic data with embeddings
searched above a threshold, agent registrations notified by Redis or webhook, API keys
with roles, scopes and projects, and tenants with plans, quotas and settings; it runs
Alembic migrations, backs up, restores, reports health and Prometheus metrics and table
sizes. Each step here is ctxbase's public API doing the same, over its REST server (the
broker is a server) and its command line, on an SQLite file and on PostgreSQL.

Its tables map onto ctxbase's records as follows:

- ``events`` → events: ``project_id`` (the project), ``tenant_id``, ``event_type``,
  ``data``, ``sequence`` (gapless, unique per project), ``created_at``.
- ``embeddings`` → context units: ``node_key`` is the name (unique per project: writing
  it again makes its next version), ``description`` the content, ``data_key`` and
  ``data`` go in metadata; the vector is the unit's stored embedding (384 dimensions with
  the default local model; these tests embed with a 64-dimension word hash).
- ``agent_registrations`` → subscriptions: ``agent_id``, ``needs``,
  ``notification_method`` is ``delivery`` (redis, webhook; or sse, poll),
  ``notification_channel`` / ``webhook_url`` is ``target``.
- ``api_keys`` and ``api_key_roles`` → API keys: ``name``, ``prefix``, ``key_hash`` (never
  shown), ``scopes``, ``tenant``, ``role``, ``projects``.
- ``tenants`` → tenants: ``slug`` (the guide's ``tenant_id``), ``name``, ``plan``,
  ``quotas``, ``settings``, ``is_active``, ``created_at``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import ctxbase
from ctxbase.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from ctxbase.records.imports import mapped_id
from tests.conftest import open_store, store_on
from tests.events.conftest import FAST_DELIVERY
from tests.events.receiver import webhook_receiver
from tests.scenarios.conftest import Served, ok, serve


@pytest.fixture
def broker(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """The broker's server: a store whose deliveries retry in fractions of a second."""
    for store in store_on(backend, tmp_path, request, **FAST_DELIVERY):
        with serve(store) as served:
            yield served


def describe(client: ctxbase.Client, node_key: str, description: str, **data: Any) -> Any:
    """``INSERT INTO embeddings (project_id, data_key, node_key, description, data, …)``."""
    return client.contexts.add(
        node_key,
        description,
        source_type="node",
        metadata={"data_key": data.pop("data_key", "schema"), "data": data},
        project=data.pop("project", "default") if "project" in data else "default",
    )


# --- events: event sourcing ---------------------------------------------------------------


def test_event_stream_per_project(broker: Served) -> None:
    """Sequences are gapless and unique per project; a writer may insist on the sequence it
    read (optimistic concurrency); readers page from any sequence or follow the stream."""
    with broker.client() as client:
        client.projects.create("billing")
        first = client.events.append("schema.changed", {"table": "invoices", "column": "vat"})
        assert (first.sequence, first.event_type) == (1, "schema.changed")
        assert first.data == {"table": "invoices", "column": "vat"}
        batch = client.events.append_many(
            [{"event_type": "deploy.started", "data": {"build": i}} for i in range(3)]
        )
        assert [e.sequence for e in batch] == [2, 3, 4]
        other = client.events.append("deploy.started", {"build": 1}, project="billing")
        assert other.sequence == 1  # UNIQUE (project_id, sequence): each project its own
        assert client.events.last_sequence() == 4

        client.events.append("lock.taken", expected_sequence=4)
        with pytest.raises(ConflictError):
            client.events.append("lock.taken", expected_sequence=4)

        page = client.events.list(after=2, limit=2)
        assert [e.sequence for e in page.items] == [3, 4] and page.last_sequence == 5
        assert [e.sequence for e in client.events.list(after=page.next_after).items] == [5]
        seen = []
        for event in client.events.stream(after=0):
            seen.append(event.sequence)
            if event.sequence == 5:
                break
        assert seen == [1, 2, 3, 4, 5]
        assert all(e.created_at is not None for e in client.events.list().items)


# --- embeddings: semantic data -------------------------------------------------------------


def test_semantic_data_by_node_key_with_a_threshold(broker: Served) -> None:
    """``UNIQUE (project_id, node_key)`` and the similarity query with its 0.5 threshold,
    within one project."""
    with broker.client() as client:
        client.projects.create("frontend")
        users = describe(
            client,
            "api/users",
            "GET /users returns id, name and email of every user",
            fields=["id", "name", "email"],
        )
        describe(client, "api/orders", "POST /orders creates an order for a cart")
        describe(client, "api/users", "GET /users returns name of every user", project="frontend")
        again = describe(
            client,
            "api/users",
            "GET /users returns id, name, email and role of every user",
            fields=["id", "name", "email", "role"],
        )
        assert again.version == 2 and client.contexts.get(users.id).superseded_by == again.id
        latest = client.contexts.get_latest("api/users")
        assert latest.metadata == {
            "data_key": "schema",
            "data": {"fields": ["id", "name", "email", "role"]},
        }

        result = client.search(
            "GET /users returns name email role of users",
            kinds=["context"],
            mode="vector",
            threshold=0.5,
            k=10,
        )
        assert [hit.item.name for hit in result.hits] == ["api/users"]  # orders: under 0.5
        hit = result.hits[0]
        assert hit.id == again.id and hit.score > 0.5 and hit.retrieval_method == "vector"
        elsewhere = client.search(
            "GET /users", kinds=["context"], mode="text", project="frontend"
        ).hits
        assert [h.item.project_id for h in elsewhere] == [elsewhere[0].item.project_id]
        assert elsewhere[0].item.content == "GET /users returns name of every user"


def test_index_types(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """ "Index Types": HNSW by default, IVFFlat for very large sets, with their parameters
    (on SQLite the settings are accepted and vectors are searched exactly)."""
    for store in store_on(
        backend, tmp_path, request, vector_index="ivfflat", ivfflat_lists=100, ivfflat_probes=10
    ):
        unit = store.contexts.add("api/users", "GET /users returns users", source_type="node")
        store.contexts.add("api/orders", "POST /orders creates an order", source_type="node")
        hits = store.search("GET /users returns users", kinds=["context"], mode="vector").hits
        assert hits[0].id == unit.id and hits[0].score > 0.99


# --- agent_registrations: notifications --------------------------------------------------


def test_agent_registrations_are_notified(broker: Served) -> None:
    """An agent registers its needs and how to be told: by webhook (signed, retried), by
    Redis channel, or it reads its pending events itself. Health then reports Redis."""
    with (
        broker.client() as client,
        webhook_receiver() as receiver,
        redis_channel() as (
            channel,
            received,
        ),
    ):
        hook = client.subscriptions.create(
            agent_id="frontend-agent",
            needs=["changes to the API schema"],
            event_types=["schema.*"],
            delivery="webhook",
            target=f"{receiver.url}/ok",
            secret="a-shared-secret-of-the-frontend-agent",
        )
        assert hook.has_secret and hook.cursor == 0
        redis = client.subscriptions.create(
            agent_id="ops-agent", event_types=["deploy.*"], delivery="redis", target=channel
        )
        assert (redis.delivery, redis.target) == ("redis", channel)
        polled = client.subscriptions.create(agent_id="audit-agent", event_types=["deploy.*"])

        client.events.append("schema.changed", {"summary": "GET /users now returns email"})
        client.events.append("deploy.finished", {"build": 7})
        receiver.wait_for(1)
        (delivery,) = [d for d in receiver.deliveries if d.accepted]
        assert json.loads(delivery.body)["event_type"] == "schema.changed"
        assert delivery.headers["X-Ctxbase-Signature"].startswith("sha256=")
        if received is not None:  # a Redis to publish to runs here
            published = received(1)
            assert [(m["sequence"], m["event_type"]) for m in published] == [(2, "deploy.finished")]

        pending = client.subscriptions.pending(polled.id)
        assert [e.event_type for e in pending.items] == ["deploy.finished"]
        client.subscriptions.ack(polled.id, pending.scanned_to)
        assert client.subscriptions.pending(polled.id).items == []
        listed = client.subscriptions.list().items
        assert {s.agent_id for s in listed} == {"frontend-agent", "ops-agent", "audit-agent"}
        assert "a-shared-secret" not in json.dumps([s.model_dump(mode="json") for s in listed])

        health = httpx.get(f"{broker.url}/api/v1/health").json()  # "redis": "connected"
        assert health["redis"]["reachable"] is (received is not None), health
        client.subscriptions.delete(redis.id)
        with pytest.raises(NotFoundError):
            client.subscriptions.get(redis.id)


@contextmanager
def redis_channel() -> Iterator[tuple[str, Any]]:
    """A fresh channel on the Redis the server publishes to, and a function waiting for
    ``count`` messages on it (None when no Redis runs there: then the registration is
    only stored, and health reports Redis unreachable)."""
    redis = pytest.importorskip("redis")
    url = ctxbase.Settings.from_values().redis_url
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError:
        client.close()
        yield f"contex:ops:{uuid.uuid4().hex}", None
        return
    channel = f"contex:ops:{uuid.uuid4().hex}"
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"

    def received(count: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(messages) < count and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
            if message and message["type"] == "message":
                messages.append(json.loads(message["data"]))
        return messages

    try:
        yield channel, received
    finally:
        pubsub.close()
        client.close()


# --- Authentication and multi-tenancy ----------------------------------------------------


def test_keys_roles_projects_and_tenants(broker: Served) -> None:
    """``api_keys`` / ``api_key_roles`` / ``tenants``: the operator makes a tenant with a
    plan and quotas and its admin key; the tenant's admin makes projects and keys limited by
    role and project; revoking a key or deactivating the tenant stops it at once."""
    with broker.client() as operator:
        tenant = operator.tenants.create(
            "acme", name="Acme Corp", plan="pro", quotas={"projects": 2}
        )
        assert (tenant.slug, tenant.name, tenant.plan, tenant.is_active) == (
            "acme",
            "Acme Corp",
            "pro",
            True,
        )
        admin = operator.keys.create(tenant="acme", role="admin", name="acme admin")
        assert admin.key.startswith(admin.prefix) and admin.tenant == "acme"
    with ctxbase.Client(broker.url, api_key=admin.key) as acme:
        acme.projects.create("support")
        acme.projects.create("sales")
        reader = acme.keys.create(role="reader", name="dashboard", projects=["support"])
        writer = acme.keys.create(role="writer", name="bot", projects=["support"])
        listed = {k.name: k for k in acme.keys.list().items}
        assert listed["dashboard"].role == "reader" and listed["dashboard"].projects == ["support"]
        assert "key" not in listed["bot"].model_dump()  # only the prefix, never the key
    with broker.client() as operator:
        assert operator.tenants.usage("acme")["projects"] == 2
        # A plan's quota refuses what would pass it (usage is measured every few seconds,
        # so a tenant already at its quota shows it best).
        operator.tenants.create("tiny", plan="free", quotas={"projects": 0})
        tiny_admin = operator.keys.create(tenant="tiny", role="admin").key
    with ctxbase.Client(broker.url, api_key=tiny_admin) as tiny:
        with pytest.raises(ctxbase.QuotaExceededError) as refused:
            tiny.projects.create("first")
        assert refused.value.details["quota"] == "projects"
    with ctxbase.Client(broker.url, api_key=writer.key) as bot:
        bot.memories.add("Refunds take five business days", project="support")
        with pytest.raises(NotFoundError):  # a project outside its list
            bot.memories.add("x", project="sales")
        with pytest.raises(NotFoundError):  # another tenant's project
            bot.memories.list(project="default")
    with ctxbase.Client(broker.url, api_key=reader.key) as dashboard:
        assert len(dashboard.memories.list(project="support").items) == 1
        with pytest.raises(PermissionDeniedError):  # readonly
            dashboard.memories.add("y", project="support")
    with broker.client() as operator:
        operator.keys.revoke(reader.key_id)
        with (
            ctxbase.Client(broker.url, api_key=reader.key) as dashboard,
            pytest.raises(AuthenticationError),
        ):
            dashboard.memories.list(project="support")
        operator.tenants.update("acme", is_active=False)
        with (
            ctxbase.Client(broker.url, api_key=writer.key) as bot,
            pytest.raises(AuthenticationError),
        ):
            bot.memories.list(project="support")
        actions = {entry.action for entry in operator.audit.list(limit=100).items}
        assert {"tenant.create", "key.create", "key.revoke", "tenant.deactivate"} <= actions


def test_scopes_tenant_settings_and_event_tenants(broker: Served) -> None:
    """``api_keys.scopes`` limit a key to some operations beside its role and projects;
    ``tenants.settings`` and quotas of the broker's own are kept as given; every event
    records its ``tenant_id``."""
    with broker.client() as operator:
        tenant = operator.tenants.create(
            "acme",
            plan="pro",
            quotas={"projects": 10, "requests_per_minute": 600, "agents": 25},
            settings={"region": "eu", "retention_days": 30},
        )
        assert tenant.settings == {"region": "eu", "retention_days": 30}
        quotas = tenant.quotas.model_dump(exclude_none=True)  # "agents": a quota of its own
        assert quotas == {"projects": 10, "requests_per_minute": 600, "agents": 25}
        changed = operator.tenants.update("acme", settings={"region": "us"})
        assert changed.settings == {"region": "us"}  # replaced whole
        admin = operator.keys.create(tenant="acme", role="admin").key
    with ctxbase.Client(broker.url, api_key=admin) as acme:
        acme.projects.create("support")
        agent = acme.keys.create(
            role="writer",
            name="agent",
            projects=["support"],
            scopes=["events:write", "memories:*", "search:read"],
        )
        assert agent.scopes == ["events:write", "memories:*", "search:read"]
        with pytest.raises(ctxbase.InvalidInputError):
            acme.keys.create(role="reader", scopes=["events:teleport"])
    with ctxbase.Client(broker.url, api_key=agent.key) as bot:
        event = bot.events.append("ticket.opened", {"id": 7}, project="support")
        assert event.tenant_id == tenant.id and event.sequence == 1
        bot.memories.add("Refunds take five business days", project="support")
        assert bot.search("refunds", project="support").hits
        with pytest.raises(PermissionDeniedError) as refused:
            bot.events.list(project="support")  # events:read is not among its scopes
        assert refused.value.details["scope"] == "events:read"
        with pytest.raises(PermissionDeniedError):
            bot.state.put("k", 1, project="support")
    with ctxbase.Client(broker.url, api_key=admin) as acme:
        (listed,) = [k for k in acme.keys.list().items if k.name == "agent"]
        assert listed.scopes == ["events:write", "memories:*", "search:read"]
        (stored,) = acme.events.list(project="support").items
        assert stored.tenant_id == tenant.id


def test_registering_an_agent_again_replaces_its_registration(broker: Served) -> None:
    """``agent_registrations.agent_id`` is the primary key: registering again replaces the
    registration (its cursor kept, answered 200 rather than 201); a name makes another."""
    with broker.client() as client:
        first = client.subscriptions.create(agent_id="frontend-agent", event_types=["schema.*"])
        client.events.append("schema.changed")
        again = client.subscriptions.create(
            agent_id="frontend-agent", needs=["API changes"], event_types=["schema.*", "api.*"]
        )
        assert again.id == first.id and again.event_types == ["schema.*", "api.*"]
        assert [e.sequence for e in client.subscriptions.pending(again.id).items] == [1]
        other = client.subscriptions.create(
            agent_id="frontend-agent", name="alerts", event_types=["alert"]
        )
        assert other.id != first.id
        assert len(client.subscriptions.list(agent_id="frontend-agent").items) == 2
    body = {"agent_id": "frontend-agent", "event_types": ["schema.*"]}
    answer = httpx.post(
        f"{broker.url}/api/v1/projects/default/subscriptions",
        json=body,
        headers={"Authorization": f"Bearer {broker.admin_key}"},
    )
    assert answer.status_code == 200 and answer.json()["id"] == str(first.id)
    created = httpx.post(
        f"{broker.url}/api/v1/projects/default/subscriptions",
        json={**body, "agent_id": "new-agent"},
        headers={"Authorization": f"Bearer {broker.admin_key}"},
    )
    assert created.status_code == 201


def test_keys_and_tenants_from_the_command_line(database_url: str) -> None:
    ok(
        "tenants",
        "create",
        "globex",
        "--name",
        "Globex",
        "--plan",
        "team",
        "--max-projects",
        "3",
        "-d",
        database_url,
    )
    key = (
        ok(
            "keys",
            "create",
            "--tenant",
            "globex",
            "--role",
            "writer",
            "--name",
            "ci",
            "-d",
            database_url,
        )
        .strip()
        .splitlines()[-1]
    )
    assert key.startswith("cbk_")
    listed = ok("keys", "list", "--tenant", "globex", "-d", database_url)
    assert "ci" in listed and key not in listed
    with open_store(database_url) as store:
        principal = store.keys.authenticate(key)
        assert principal is not None
        assert store.tenants.get("globex").quotas.projects == 3
    assert "globex" in ok("tenants", "list", "-d", database_url)


# --- Migrations, monitoring, backup ---------------------------------------------------------


def test_health_and_prometheus_metrics(broker: Served) -> None:
    """``GET /api/v1/health`` (no key) and ``/api/v1/metrics`` (the operator's key)."""
    with broker.client() as client:
        client.events.append("deploy.started")
        describe(client, "api/users", "GET /users")
    health = httpx.get(f"{broker.url}/api/v1/health")
    assert health.status_code == 200
    body = health.json()
    assert body["database"]["status"] == "ok" and body["status"] in ("ok", "degraded")
    assert (
        "redis" not in body
        or body["redis"] is None
        or body["redis"].get("reachable")
        in (
            True,
            False,
        )
    )
    metrics = httpx.get(
        f"{broker.url}/api/v1/metrics", headers={"Authorization": f"Bearer {broker.admin_key}"}
    )
    assert metrics.status_code == 200
    text = metrics.text
    for name in (
        "ctxbase_db_pool_in_use",
        "ctxbase_db_pool_idle",
        "ctxbase_db_query_duration_seconds",
        "ctxbase_http_requests_total",
    ):
        assert name in text, name
    rows = {
        line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("ctxbase_rows{")
    }
    assert rows['kind="event"'] == 1 and rows['kind="context"'] == 1
    assert rows['kind="embedding"'] >= 1
    assert httpx.get(f"{broker.url}/api/v1/metrics").status_code == 401


def test_migrations_backup_restore_and_table_sizes(database_url: str, tmp_path: Path) -> None:
    """``alembic upgrade head | downgrade -1 | current | history``, ``pg_dump``/``pg_restore``
    and the ``pg_statio_user_tables`` sizes, as ``ctxbase`` commands."""
    ok("db", "upgrade", "-d", database_url)
    ok("db", "downgrade", "-1", "-d", database_url)
    assert "(up to date)" not in ok("db", "current", "-d", database_url)
    ok("db", "upgrade", "-d", database_url)
    assert "(up to date)" in ok("db", "current", "-d", database_url)
    with open_store(database_url, auto_migrate=False) as store:
        store.events.append_many([{"event_type": "step", "data": i} for i in range(5)])
    backup = tmp_path / "backup.dump"
    ok("backup", "-o", str(backup), "--quiet", "-d", database_url)
    with open_store(database_url) as store:
        store.events.append("after.backup")
    ok("restore", str(backup), "--yes", "--quiet", "-d", database_url)
    with open_store(database_url) as store:
        assert store.events.last_sequence() == 5
        assert store.events.append("next").sequence == 6  # the stream goes on, gapless
    figures = json.loads(ok("stats", "--json", "-d", database_url))
    sizes = {t["table"]: (t["rows"], t["bytes"]) for t in figures["tables"]}
    assert sizes["events"][0] == 6 and sizes["events"][1] > 0


def test_pool_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``DATABASE_POOL_SIZE``, ``DATABASE_MAX_OVERFLOW``, ``DATABASE_POOL_TIMEOUT``,
    ``DATABASE_ECHO`` are ``CTXBASE_POOL_SIZE`` … ``CTXBASE_DATABASE_ECHO``."""
    for name, value in {
        "CTXBASE_POOL_SIZE": "10",
        "CTXBASE_MAX_OVERFLOW": "20",
        "CTXBASE_POOL_TIMEOUT": "30",
        "CTXBASE_POOL_RECYCLE": "3600",
        "CTXBASE_DATABASE_ECHO": "false",
    }.items():
        monkeypatch.setenv(name, value)
    settings = ctxbase.Settings()
    assert (settings.pool_size, settings.max_overflow, settings.pool_timeout) == (10, 20, 30)
    assert settings.pool_recycle == 3600 and settings.database_echo is False


# --- Moving in ---------------------------------------------------------------------------


def test_moving_in_a_tenants_event_stream_and_nodes(broker: Served) -> None:
    """One import per source project, with a key of its tenant: the events keep their
    sequences and times, later appends continue the stream, a registered agent is told of
    the imported events; the semantic nodes become context units by node key."""
    with broker.client() as operator:
        operator.tenants.create("acme", plan="pro")
        admin = operator.keys.create(tenant="acme", role="admin").key
    with ctxbase.Client(broker.url, api_key=admin) as acme:
        acme.projects.create("billing")
        watcher = acme.subscriptions.create(
            agent_id="auditor", event_types=["invoice.*"], project="billing"
        )
        events = [
            {
                "kind": "event",
                "id": 1000 + n,
                "sequence": n,
                "event_type": kind,
                "data": {"invoice": n},
                "created_at": f"2025-02-0{n}T12:00:00Z",
            }
            for n, kind in enumerate(["invoice.created", "invoice.paid", "user.login"], 1)
        ]
        nodes = [
            {
                "kind": "context",
                "id": "emb-1",
                "name": "api/invoices",
                "source_type": "node",
                "content": "GET /invoices lists invoices with totals",
                "metadata": {"data_key": "schema", "data": {"fields": ["id", "total"]}},
            },
        ]
        report = acme.imports.rows(events + nodes, project="billing")
        assert report.written == {"event": 3, "context": 1}
        assert report.ids["event"]["1001"] == mapped_id("event", 1001)
        stream = acme.events.list(project="billing").items
        assert [(e.sequence, e.event_type) for e in stream][:1] == [(1, "invoice.created")]
        assert stream[2].created_at == datetime(2025, 2, 3, 12, tzinfo=UTC)
        assert acme.events.append("invoice.voided", project="billing").sequence == 4
        pending = acme.subscriptions.pending(watcher.id, project="billing").items
        assert [e.sequence for e in pending] == [1, 2, 4]
        node = acme.contexts.get_latest("api/invoices", project="billing")
        assert node.id == mapped_id("context", "emb-1")
        hits = acme.search(
            "GET /invoices totals",
            kinds=["context"],
            mode="vector",
            threshold=0.5,
            project="billing",
        ).hits
        assert [h.id for h in hits] == [node.id]
    with broker.client() as operator, pytest.raises(NotFoundError):
        operator.events.list(project="billing")  # another tenant's project
