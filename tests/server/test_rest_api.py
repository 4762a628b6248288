"""HTTP specifics: status codes, headers, metrics, limits, and nothing written on bad input."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.server import create_app
from tests.conftest import open_store

API = "/api/v1/projects/default"
#: An id no conversation has (fixed: test ids must be the same in every collection).
MISSING = "00000000-0000-4000-8000-00000000dead"


@pytest.fixture
def http(store: ctxbase.Store) -> Iterator[TestClient]:
    with TestClient(create_app(store=store)) as client:
        yield client


def _counts(store: ctxbase.Store) -> tuple[int, ...]:
    return (
        len(store.conversations.list(limit=1000).items),
        len(store.memories.list(limit=1000).items),
        len(store.contexts.list(limit=1000, include_superseded=True).items),
        len(store.state.list(limit=1000).items),
        len(store.projects.list().items),
    )


def test_status_codes(http: TestClient) -> None:
    created = http.post(f"{API}/conversations", json={"title": "t"})
    assert created.status_code == 201
    cid = created.json()["id"]
    assert http.get(f"{API}/conversations/{cid}").status_code == 200
    assert http.patch(f"{API}/conversations/{cid}", json={"title": "u"}).json()["title"] == "u"
    one = http.post(f"{API}/conversations/{cid}/messages", json={"role": "user", "content": "a"})
    assert one.status_code == 201 and one.json()["position"] == 1
    many = http.post(f"{API}/conversations/{cid}/messages", json=[{"role": "user", "content": "b"}])
    assert many.status_code == 201 and [m["position"] for m in many.json()] == [2]
    assert http.get(f"/api/v1/projects/default/messages/{one.json()['id']}").status_code == 200
    deleted = http.delete(f"{API}/conversations/{cid}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert http.get(f"{API}/conversations/{cid}").status_code == 404
    assert http.post("/api/v1/projects", json={"slug": "default"}).status_code == 409


def test_state_etag_and_conditional_writes(http: TestClient) -> None:
    url = f"{API}/state/agents/coder/plan"
    created = http.put(url, json={"value": {"step": 1}})
    assert (created.status_code, created.headers["etag"]) == (201, '"1"')
    got = http.get(url)
    assert got.headers["etag"] == '"1"' and got.json()["value"] == {"step": 1}
    assert http.put(url, json={"value": 2}, headers={"If-Match": '"7"'}).status_code == 412
    assert http.put(url, json={"value": 2}, headers={"If-None-Match": "*"}).status_code == 412
    updated = http.put(url, json={"value": 2}, headers={"If-Match": got.headers["etag"]})
    assert (updated.status_code, updated.headers["etag"]) == (200, '"2"')
    assert http.put(url, json={"value": 3}, headers={"If-Match": "garbage"}).status_code == 422
    assert http.delete(url, headers={"If-Match": '"1"'}).status_code == 412
    assert http.delete(url, headers={"If-Match": '"2"'}).status_code == 204
    assert http.get(url).status_code == 404
    listed = http.get(f"{API}/state", params={"namespace": "agents"}).json()
    assert listed == {"items": [], "next_cursor": None}


BAD_REQUESTS = [
    ("post", f"{API}/conversations", {"content": b"{not json"}, 400),
    ("post", f"{API}/conversations", {"json": {"title": 5}}, 422),
    ("post", f"{API}/conversations", {"json": {"metadata": "not an object"}}, 422),
    ("post", f"{API}/conversations", {"json": {"title": "x" * 501}}, 422),
    ("post", "/api/v1/projects/nope/conversations", {"json": {}}, 404),
    ("get", f"{API}/conversations/not-a-uuid", {}, 422),
    ("get", f"{API}/conversations", {"params": {"limit": 0}}, 422),
    ("get", f"{API}/conversations", {"params": {"limit": 1001}}, 422),
    ("get", f"{API}/conversations", {"params": {"cursor": "bogus"}}, 400),
    ("get", f"{API}/conversations", {"params": {"metadata": "[1]"}}, 422),
    (
        "post",
        f"{API}/conversations/{MISSING}/messages",
        {"json": {"role": "user", "content": "x"}},
        404,
    ),
    ("post", f"{API}/memories", {"json": {"content": "x", "importance": 2}}, 422),
    ("post", f"{API}/memories", {"json": {"content": "x", "expires_at": "yesterday"}}, 422),
    ("post", f"{API}/contexts", {"json": {"name": "n"}}, 422),
    ("put", f"{API}/state/bad%20ns/key", {"json": {"value": 1}}, 422),
    ("put", f"{API}/state/k", {"json": {}}, 422),
    ("post", "/api/v1/projects", {"json": {"slug": "Has Spaces"}}, 422),
]


def test_a_memorys_expiry_is_cleared_over_rest(http: TestClient, store: ctxbase.Store) -> None:
    memory = store.memories.add("until tomorrow", ttl_seconds=86_400)
    url = f"{API}/memories/{memory.id}"
    both = http.patch(url, json={"clear_expiry": True, "expires_at": "2999-01-01T00:00:00Z"})
    assert both.status_code == 422
    message = both.json()["error"]["message"]
    assert "expires_at" in message and "clear_expiry" in message
    assert store.memories.get(memory.id).expires_at is not None
    cleared = http.patch(url, json={"clear_expiry": True}, headers={"X-Ctxbase-Agent": "ops"})
    assert cleared.status_code == 200 and cleared.json()["expires_at"] is None
    change = http.get(f"{url}/history").json()["items"][-1]
    assert (change["new_value"], change["actor"]) == ({"expires_at": None}, "ops")


@pytest.mark.parametrize(("method", "url", "kwargs", "status"), BAD_REQUESTS)
def test_bad_input_is_4xx_with_the_error_shape_and_writes_nothing(
    http: TestClient, store: ctxbase.Store, method: str, url: str, kwargs: dict, status: int
) -> None:
    if "content" in kwargs:
        kwargs = {**kwargs, "headers": {"content-type": "application/json"}}
    before = _counts(store)
    response = getattr(http, method)(url, **kwargs)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert _counts(store) == before


def test_batch_with_one_bad_message_writes_none(http: TestClient, store: ctxbase.Store) -> None:
    cid = http.post(f"{API}/conversations", json={}).json()["id"]
    batch = [{"role": "user", "content": "ok"}, {"role": "user", "content": "x" * (2**20 + 1)}]
    response = http.post(f"{API}/conversations/{cid}/messages", json=batch)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert store.messages.list(cid).items == []


def test_request_body_limit(tmp_path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'small.db'}", max_request_bytes=2000) as store:
        with TestClient(create_app(store=store)) as http:
            big = {"title": "x" * 3000}
            response = http.post(f"{API}/conversations", json=big)
            assert response.status_code == 413
            assert response.json()["error"]["code"] == "payload_too_large"

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
                yield b'{"title": "'
                yield b"y" * 3000
                yield b'"}'

            chunked = http.post(
                f"{API}/conversations",
                content=chunks(),
                headers={"content-type": "application/json"},
            )
            assert chunked.status_code == 413
            small = http.post(
                f"{API}/conversations",
                content=iter([b'{"title": "ok"}']),
                headers={"content-type": "application/json"},
            )
            assert small.status_code == 201
        assert len(store.conversations.list().items) == 1


def test_metrics(http: TestClient) -> None:
    cid = http.post(f"{API}/conversations", json={}).json()["id"]
    http.post(f"{API}/conversations/{cid}/messages", json={"role": "user", "content": "hi"})
    http.get(f"{API}/conversations/{uuid.uuid4()}")
    response = http.get("/api/v1/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = 'route="/api/v1/projects/{project}/conversations/{conversation_id}"'
    assert f'ctxbase_http_requests_total{{method="GET",{route},status="404"}} 1.0' in text
    posted = 'method="POST",route="/api/v1/projects/{project}/conversations"'
    assert f"ctxbase_http_request_duration_seconds_count{{{posted}}} 1.0" in text
    assert "ctxbase_db_query_duration_seconds_count" in text
    assert 'ctxbase_rows{kind="conversation"} 1.0' in text
    assert 'ctxbase_rows{kind="message"} 1.0' in text
    assert "ctxbase_db_pool_in_use" in text and "ctxbase_db_pool_idle" in text


def test_openapi_documents_every_operation(http: TestClient) -> None:
    spec = http.get("/api/v1/openapi.json").json()
    operations = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]
    assert len(operations) >= 30
    for method, path, operation in operations:
        assert operation.get("summary"), f"{method} {path} has no summary"
    schemas = spec["components"]["schemas"]
    for name in ("ConversationIn", "MessageIn", "ContextIn", "MemoryIn", "StateIn"):
        assert schemas[name].get("examples"), f"{name} has no example"


def test_reembed_over_http(http: TestClient, store: ctxbase.Store) -> None:
    import time

    store.memories.add("the staging cluster is down")
    status = http.get("/api/v1/embeddings").json()
    assert status["active_model"] == "hash:64"
    assert status["pending"] == {"message": 0, "context": 0, "memory": 0}
    assert http.post("/api/v1/embeddings/reembed", json={"model": "magic:1"}).status_code == 422
    started = http.post("/api/v1/embeddings/reembed", json={"model": "hash:32"})
    assert started.status_code == 202
    deadline = time.monotonic() + 30
    while True:
        answer = http.get("/api/v1/embeddings/reembed")
        job = answer.json()
        if answer.status_code == 200 and job["status"] == "completed":
            break
        assert answer.status_code in (200, 404) and time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["model"] == "hash:32" and job["done"] == 1
    assert http.get("/api/v1/embeddings").json()["active_model"] == "hash:32"


def test_the_server_fills_the_backlog(tmp_path) -> None:
    import time

    import numpy as np

    from ctxbase.embeddings import EmbeddingError
    from ctxbase.store.embedding import Embeddings

    class Down:
        name, dimensions = "hash:64", 64

        def embed(self, texts: list[str]) -> np.ndarray:
            raise EmbeddingError("down")

    url = f"sqlite:///{tmp_path / 'backlog.db'}"
    with open_store(url, embed_worker_interval=0.1) as store:
        healthy = store.embeddings
        store.embeddings = Embeddings(store, Down())  # type: ignore[arg-type]
        store.memories.add("written while the provider was down")
        store.embeddings = healthy
        assert store.embeddings.pending()["memory"] == 1
        with TestClient(create_app(store=store)):
            deadline = time.monotonic() + 20
            while store.embeddings.pending()["memory"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)


def test_registering_a_subscription_again_answers_200_with_the_same_one(
    http: TestClient, store: ctxbase.Store
) -> None:
    first = http.post(f"{API}/subscriptions", json={"agent_id": "ops", "event_types": ["a"]})
    assert first.status_code == 201, first.text
    again = http.post(f"{API}/subscriptions", json={"agent_id": "ops", "event_types": ["b"]})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["event_types"] == ["b"]
    named = http.post(f"{API}/subscriptions", json={"agent_id": "ops", "name": "second"})
    assert named.status_code == 201 and named.json()["id"] != first.json()["id"]
    assert len(store.subscriptions.list().items) == 2
    spec = http.get("/api/v1/openapi.json").json()
    responses = spec["paths"]["/api/v1/projects/{project}/subscriptions"]["post"]["responses"]
    assert {"200", "201"} <= set(responses)
