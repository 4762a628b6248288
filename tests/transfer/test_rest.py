"""REST: database configurations (test, initialize, statistics, activate, restart) and
migration jobs (start, status, SSE stream, cancel), with bad input answered by a 4xx."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

import ctxbase
from ctxbase.config import Settings
from ctxbase.server import create_app
from tests.conftest import open_store
from tests.postgres import PostgresServer
from tests.transfer.data import assert_same_data

API = "/api/v1"


def _app_settings(store: ctxbase.Store) -> Settings:
    """The store's settings without key checks (tests/security covers who may call)."""
    return store.settings.model_copy(update={"auth": "disabled", "embed_worker_interval": 0})


@pytest.fixture
def home(tmp_path: Path) -> Iterator[ctxbase.Store]:
    with open_store(f"sqlite:///{tmp_path / 'home.db'}") as store:
        yield store


@pytest.fixture
def http(home: ctxbase.Store) -> Iterator[TestClient]:
    with TestClient(create_app(store=home, settings=_app_settings(home))) as client:
        yield client


def _wait(http: TestClient, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        report: dict[str, object] = http.get(f"{API}/migrations/{job_id}").json()
        if report["status"] not in ("pending", "running"):
            return report
        time.sleep(0.05)
    raise AssertionError("the migration did not finish")


def test_database_configs_lifecycle(
    http: TestClient, home: ctxbase.Store, tmp_path: Path, postgres: PostgresServer
) -> None:
    with postgres.database() as url:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        body = {
            "name": "prod",
            "kind": "postgresql",
            "host": parsed.query["host"],
            "database": parsed.database,
            "username": parsed.username,
            "password": "s3cret",
        }
        created = http.post(f"{API}/database-configs", json=body)
        assert created.status_code == 201, created.text
        config = created.json()
        assert config["has_password"] is True and "s3cret" not in created.text
        assert "password" not in config and "url" not in config
        config_id = config["id"]
        assert http.post(f"{API}/database-configs", json=body).status_code == 409

        tested = http.post(f"{API}/database-configs/{config_id}/test").json()
        assert tested["ok"] and tested["pgvector"]["available"] and tested["server_version"]
        assert tested["schema_revision"] is None
        init = http.post(
            f"{API}/database-configs/{config_id}/initialize", json={"require_pgvector": True}
        )
        assert init.status_code == 200 and init.json()["status"] == "ok"
        stats = http.get(f"{API}/database-configs/{config_id}/statistics").json()["tables"]
        assert {"table": "memories", "rows": 0}.items() <= next(
            s for s in stats if s["table"] == "memories"
        ).items()

        home.memories.add("only in the home database")
        activated = http.post(f"{API}/database-configs/{config_id}/activate")
        assert activated.status_code == 200 and activated.json()["is_active"]
        # the running server now serves the PostgreSQL database …
        http.post(f"{API}/projects/default/memories", json={"content": "written after"})
        memories = http.get(f"{API}/projects/default/memories").json()["items"]
        assert [m["content"] for m in memories] == ["written after"]
        listed = http.get(f"{API}/database-configs").json()["items"]
        assert [c["is_active"] for c in listed] == [True]
        assert http.delete(f"{API}/database-configs/{config_id}").status_code == 409

        # … and still does after a restart on the same home database
        with TestClient(create_app(store=home, settings=_app_settings(home))) as again:
            memories = again.get(f"{API}/projects/default/memories").json()["items"]
            assert [m["content"] for m in memories] == ["written after"]


def test_bad_configurations_are_4xx(http: TestClient) -> None:
    for body in (
        {"name": "x", "kind": "oracle"},
        {"name": "x", "kind": "postgresql"},  # no database
        {"name": "x", "kind": "sqlite"},  # no path
        {"name": "bad name!", "kind": "sqlite", "sqlite_path": "/tmp/x.db"},
        {"name": "x", "kind": "sqlite", "sqlite_path": "/tmp/x.db", "port": 99999},
    ):
        response = http.post(f"{API}/database-configs", json=body)
        assert response.status_code == 422, body
        assert set(response.json()["error"]) == {"code", "message", "details"}
    unknown = "01234567-89ab-7def-8123-456789abcdef"
    assert http.post(f"{API}/database-configs/{unknown}/test").status_code == 404
    assert http.get(f"{API}/database-configs/not-a-uuid").status_code == 422
    created = http.post(
        f"{API}/database-configs",
        json={
            "name": "gone",
            "kind": "postgresql",
            "host": "127.0.0.1",
            "port": 1,
            "database": "x",
            "password": "hunter2",
        },
    )
    config_id = created.json()["id"]
    tested = http.post(f"{API}/database-configs/{config_id}/test").json()
    assert tested["ok"] is False and tested["reason"] and "hunter2" not in json.dumps(tested)
    refused = http.post(f"{API}/database-configs/{config_id}/activate")
    assert refused.status_code == 422 and "hunter2" not in refused.text


def test_migration_job_with_stream_and_verification(
    http: TestClient, source_url: str, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    started = http.post(
        f"{API}/migrations",
        json={"source": {"url": source_url}, "target": {"url": target}, "batch_size": 500},
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    events = []
    with http.stream("GET", f"{API}/migrations/{job_id}/stream") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                events.append(line.split(":", 1)[1].strip())
    assert events[-1] == "end" and "progress" in events
    report = _wait(http, job_id)
    assert report["status"] == "completed"
    assert report["verification"]["passed"]  # type: ignore[index]
    assert report["progress"]["percent"] == 100  # type: ignore[index]
    assert [j["id"] for j in http.get(f"{API}/migrations").json()["items"]] == [job_id]
    assert_same_data(source_url, target)


def test_cancel_a_running_job(http: TestClient, source_url: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    job_id = http.post(
        f"{API}/migrations",
        json={"source": {"url": source_url}, "target": {"url": target}, "batch_size": 10},
    ).json()["id"]
    assert http.post(f"{API}/migrations/{job_id}/cancel").status_code == 202
    assert _wait(http, job_id)["status"] == "cancelled"


def test_bad_migrations_are_4xx_and_write_nothing(
    http: TestClient, source_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "target.db"
    for body in (
        {"source": {"url": source_url}},
        {"source": {"url": source_url, "config": "x"}, "target": {"url": f"sqlite:///{target}"}},
        {"source": {"url": "oracle://x"}, "target": {"url": f"sqlite:///{target}"}},
        {
            "source": {"url": source_url},
            "target": {"url": f"sqlite:///{target}"},
            "tables": ["nope"],
        },
        {"source": {"url": source_url}, "target": {"url": f"sqlite:///{target}"}, "batch_size": 0},
        {"source": {"config": "unknown"}, "target": {"url": f"sqlite:///{target}"}},
    ):
        response = http.post(f"{API}/migrations", json=body)
        assert 400 <= response.status_code < 500, (body, response.text)
    assert not target.exists()
    assert http.get(f"{API}/migrations/01234567-89ab-7def-8123-456789abcdef").status_code == 404
    # a target holding data: 409
    response = http.post(
        f"{API}/migrations", json={"source": {"url": source_url}, "target": {"url": source_url}}
    )
    assert response.status_code == 409


def test_a_source_that_is_not_a_ctxbase_database_is_422_on_both_backends(
    http: TestClient, tmp_path: Path, postgres: PostgresServer
) -> None:
    """Empty, another application's, not a database at all, or absent: the caller named
    the wrong database, a 4xx with one error shape; no target is created."""
    (tmp_path / "empty.db").touch()
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    connection.close()
    with postgres.database() as empty_pg, postgres.database() as other_pg:
        postgres.execute("CREATE TABLE notes (body text)", database=make_url(other_pg).database)
        sources = {
            "sqlite empty": f"sqlite:///{tmp_path / 'empty.db'}",
            "sqlite junk": f"sqlite:///{tmp_path / 'junk.db'}",
            "sqlite other": f"sqlite:///{other}",
            "postgres empty": empty_pg,
            "postgres other": other_pg,
            "sqlite absent": f"sqlite:///{tmp_path / 'absent.db'}",
        }
        for name, url in sources.items():
            response = http.post(
                f"{API}/migrations",
                json={"source": {"url": url}, "target": {"url": f"sqlite:///{tmp_path / name}"}},
            )
            assert response.status_code == 422, (name, response.text)
            error = response.json()["error"]
            assert set(error) == {"code", "message", "details"}
            assert error["code"] == "invalid_input"
            expected = "does not exist" if name.endswith("absent") else "not a ctxbase database"
            assert expected in error["message"], (name, error)
            assert not (tmp_path / name).exists()
    assert not (tmp_path / "absent.db").exists()
