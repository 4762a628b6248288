"""``/health`` beside the database: the embedder (model, loaded, backlog) and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.embeddings import EmbeddingError
from ctxbase.embeddings.hashing import HashEmbedder
from ctxbase.errors import DatabaseError
from ctxbase.server import create_app
from ctxbase.store import health as store_health
from ctxbase.store.embedding import Embeddings
from tests.conftest import open_store

UNREACHABLE_REDIS = "redis://:hunter2@127.0.0.1:1/0"


class Flaky:
    """Word hashing that fails while ``down`` (as a provider that went away)."""

    def __init__(self) -> None:
        self.inner = HashEmbedder(64)
        self.name = self.inner.name
        self.dimensions = 64
        self.down = False

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.down:
            raise EmbeddingError("provider unreachable at https://user:s3cret@embed.example/v1")
        return self.inner.embed(texts)


def _usable_status(backend: str) -> str:
    """The status while everything works (without pgvector the database is degraded)."""
    return "degraded" if backend == "postgres-novector" else "ok"


@pytest.fixture
def client(store: ctxbase.Store) -> Iterator[TestClient]:
    with TestClient(create_app(store=store), raise_server_exceptions=False) as test_client:
        yield test_client


def test_health_reports_the_embedder_and_no_redis_unless_used(
    client: TestClient, store: ctxbase.Store, backend: str
) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == _usable_status(backend)
    assert body["embedder"] == {
        "status": "ok",
        "provider": "hash",
        "model": "hash:64",
        "loaded": True,
        "backlog": 0,
        "error": None,
        "failed_at": None,
    }
    assert body["redis"] is None  # neither configured nor used by a subscription


def test_a_failing_embedder_degrades_health_and_recovers(
    client: TestClient, store: ctxbase.Store, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = Flaky()
    store.embeddings = Embeddings(store, flaky)  # type: ignore[arg-type]
    flaky.down = True
    store.memories.add("stored while the provider is down")
    store.memories.add("and another one")

    response = client.get("/api/v1/health")
    assert response.status_code == 200  # the database serves: degraded, not down
    body = response.json()
    assert body["status"] == "degraded"
    embedder = body["embedder"]
    assert (embedder["status"], embedder["backlog"], embedder["model"]) == ("down", 2, "hash:64")
    assert "provider unreachable" in embedder["error"] and embedder["failed_at"]
    assert "s3cret" not in response.text
    assert "embedder_down" in [p["code"] for p in body["problems"]]
    assert client.get("/api/v1/ready").status_code == 200  # writes queue their vectors

    flaky.down = False  # back, and no write since: a health check tries it again
    monkeypatch.setattr(store_health, "PROBE_INTERVAL_SECONDS", 0.0)
    body = client.get("/api/v1/health").json()
    assert body["embedder"]["status"] == "ok" and body["embedder"]["backlog"] == 2
    assert body["status"] == _usable_status(backend)
    store.embeddings.backfill()
    assert client.get("/api/v1/health").json()["embedder"]["backlog"] == 0


def test_a_provider_down_is_not_called_by_every_health_check(
    client: TestClient, store: ctxbase.Store
) -> None:
    flaky = Flaky()
    calls = []
    original = flaky.embed
    flaky.embed = lambda texts: calls.append(texts) or original(texts)  # type: ignore[method-assign]
    store.embeddings = Embeddings(store, flaky)  # type: ignore[arg-type]
    flaky.down = True
    store.memories.add("queued")
    for _ in range(3):
        assert client.get("/api/v1/health").json()["embedder"]["status"] == "down"
    assert len(calls) == 1  # the write's; none from the checks within the probe interval


def test_an_unreachable_redis_degrades_health(client: TestClient, store: ctxbase.Store) -> None:
    store.settings = store.settings.model_copy(update={"redis_url": UNREACHABLE_REDIS})
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    redis = body["redis"]
    assert (redis["status"], redis["reachable"], redis["latency_ms"]) == ("down", False, None)
    assert redis["error"] and "hunter2" not in response.text
    assert "redis_unreachable" in [p["code"] for p in body["problems"]]
    assert client.get("/api/v1/ready").status_code == 200


def test_a_redis_subscription_puts_redis_in_health(
    client: TestClient, store: ctxbase.Store
) -> None:
    """With no URL set, Redis is reported once a subscription delivers by it (to the
    default URL, which may or may not answer here)."""
    assert client.get("/api/v1/health").json()["redis"] is None
    store.subscriptions.create(agent_id="r", delivery="redis", target="ctxbase:r")
    redis = client.get("/api/v1/health").json()["redis"]
    assert redis is not None and redis["status"] in ("ok", "down")


def test_a_reachable_redis_is_ok_with_its_latency(
    client: TestClient, store: ctxbase.Store, backend: str
) -> None:
    redis = pytest.importorskip("redis")
    url = store.settings.redis_url
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {url}: {error}")
    store.settings = store.settings.model_copy(update={"redis_url": url})
    body = client.get("/api/v1/health").json()
    assert body["redis"]["status"] == "ok" and body["redis"]["reachable"] is True
    assert 0 <= body["redis"]["latency_ms"] < 2000
    assert body["status"] == _usable_status(backend)


def test_the_library_reports_the_same(store: ctxbase.Store) -> None:
    report = store.check_embedder()
    assert (report.status, report.model, report.backlog) == ("ok", "hash:64", 0)
    assert store.check_redis() is None
    store.settings = store.settings.model_copy(update={"redis_url": UNREACHABLE_REDIS})
    down = store.check_redis()
    assert down is not None and down.status == "down"


def test_no_embedder_is_off_not_down(database_url: str) -> None:
    with open_store(database_url, embedder="none") as store:
        report = store.check_embedder()
        assert (report.status, report.provider, report.loaded, report.backlog) == (
            "off",
            None,
            False,
            0,
        )
        with TestClient(create_app(store=store)) as client:
            assert client.get("/api/v1/health").json()["embedder"]["status"] == "off"


def test_a_database_that_cannot_be_read_leaves_the_embedder_unknown(
    store: ctxbase.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(*_args: object, **_kwargs: object) -> None:
        raise DatabaseError("the database is gone")

    monkeypatch.setattr(store.embeddings, "pending", unreadable)
    assert store.check_embedder().backlog is None
    monkeypatch.setattr(store.embeddings.models, "name", unreadable)
    assert store.check_embedder().status == "unknown"


def test_a_local_model_not_loaded_yet_is_ok_but_not_loaded() -> None:
    """Not loaded is not down; failing to load is (about the process: one backend)."""
    from ctxbase.embeddings import local

    with open_store("sqlite://", embedder="local:no-such-model-here") as store:
        report = store.check_embedder()
        assert (report.provider, report.loaded, report.status) == ("local", False, "ok")
        with pytest.raises(EmbeddingError):
            local.LocalEmbedder("no-such-model-here").embed(["x"])  # as the warm-up would
        report = store.check_embedder()
        assert (report.status, report.loaded) == ("down", False)
        assert report.error and "no-such-model-here" in report.error
