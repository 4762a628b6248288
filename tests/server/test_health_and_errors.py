"""The server's health routes and its one JSON error shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

import ctxbase
from ctxbase.db import migrate
from ctxbase.server import access, create_app
from tests.conftest import open_store


def _error_shape(body: dict) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.fixture
def app(store: ctxbase.Store) -> FastAPI:
    return create_app(store=store)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_health(client: TestClient, store: ctxbase.Store, backend: str) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    # without pgvector the database is usable, and health says what is missing
    assert body["status"] == ("degraded" if backend == "postgres-novector" else "ok")
    assert body["version"] == ctxbase.__version__
    assert body["database"]["backend"] == store.backend
    assert body["database"]["schema_revision"] == migrate.head_revision()
    assert body["database"]["pending_migrations"] == []
    if backend == "postgres-novector":
        assert body["pgvector"]["installed"] is False
    elif backend == "postgres":
        assert body["pgvector"]["installed"] is True
        assert body["pgvector"]["version"]
    else:
        assert body["pgvector"] is None


def test_ready(client: TestClient) -> None:
    response = client.get("/api/v1/ready")
    assert (response.status_code, response.json()) == (200, {"ready": True, "reason": None})


def test_not_ready_while_migrations_are_pending(tmp_path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'old.db'}", auto_migrate=False) as store:
        with TestClient(create_app(store=store)) as client:
            response = client.get("/api/v1/ready")
            health = client.get("/api/v1/health").json()
    assert response.status_code == 503
    assert response.json()["reason"] == "schema migrations are pending"
    assert health["status"] == "degraded"
    assert health["problems"][0]["code"] == "schema_out_of_date"


def test_unknown_route_has_the_error_shape(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    _error_shape(response.json())
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_has_the_error_shape(client: TestClient) -> None:
    response = client.delete("/api/v1/health")
    assert response.status_code == 405
    _error_shape(response.json())


def _route_without_key(monkeypatch: pytest.MonkeyPatch, path: str, method: str = "GET") -> None:
    """Routes added by a test get an access rule like any route (else they are refused)."""
    monkeypatch.setitem(access.RULES, (method, path), "public")


def test_a_route_without_an_access_rule_is_refused(app: FastAPI, client: TestClient) -> None:
    @app.get("/api/v1/unguarded")
    def unguarded() -> dict[str, str]:
        return {"secret": "data"}

    response = client.get("/api/v1/unguarded")
    assert response.status_code == 403
    assert "secret" not in response.text


def test_unexpected_errors_are_500_without_traceback(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _route_without_key(monkeypatch, "/api/v1/boom")

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    response = client.get("/api/v1/boom")
    assert response.status_code == 500
    _error_shape(response.json())
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


def test_ctxbase_errors_map_to_their_status(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _route_without_key(monkeypatch, "/api/v1/conflict")

    @app.get("/api/v1/conflict")
    def conflict() -> None:
        raise ctxbase.ConflictError("stream moved", details={"expected": 3, "actual": 5})

    response = client.get("/api/v1/conflict")
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "conflict",
            "message": "stream moved",
            "details": {"expected": 3, "actual": 5},
        }
    }


class Body(BaseModel):
    count: int


def test_invalid_json_and_invalid_input(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _route_without_key(monkeypatch, "/api/v1/echo", "POST")

    @app.post("/api/v1/echo")
    def echo(body: Body) -> Body:
        return body

    bad_json = client.post(
        "/api/v1/echo", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    _error_shape(bad_json.json())
    wrong_type = client.post("/api/v1/echo", json={"count": "many"})
    assert wrong_type.status_code == 422
    _error_shape(wrong_type.json())
    assert wrong_type.json()["error"]["details"][0]["location"] == ["body", "count"]


def test_openapi_documents_health(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/health" in spec["paths"]
    assert "/api/v1/ready" in spec["paths"]
    assert client.get("/docs").status_code == 200
