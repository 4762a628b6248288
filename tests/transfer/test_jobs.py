"""Jobs are records in the server's home database: migrations and re-embedding, listed,
read and streamed under one id, also after a restart; a configuration written into shows
``migrating`` until its job ends; a job whose server process died is marked cancelled."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

import ctxbase
from ctxbase import transfer
from ctxbase.db.diagnostics import unfinished_migrations
from ctxbase.db.schema import new_id, utcnow
from ctxbase.errors import NotFoundError, PermissionDeniedError
from ctxbase.server import create_app
from ctxbase.server.jobs import RUNNER, TARGET_CONFIGS, this_process
from ctxbase.store.base import Scope
from ctxbase.store.jobs import HOME_COPY, record_job
from ctxbase.transfer.report import MigrationReport, Progress
from tests.conftest import open_store
from tests.postgres import PostgresServer
from tests.transfer.data import assert_same_data, cancel_first_run

API = "/api/v1"


def _report(kind: str = "migration", status: str = "completed", **more: Any) -> MigrationReport:
    return MigrationReport(
        id=new_id(),
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        source={"backend": "sqlite", "database": "a.db"},
        target={"backend": "sqlite", "database": "b.db"},
        tables=["memories"],
        options={},
        progress=Progress(percent=50.0, rows={"memories": 5}, totals={"memories": 10}),
        created_at=utcnow(),
        **more,
    )


def _app(store: ctxbase.Store) -> Any:
    settings = store.settings.model_copy(update={"auth": "disabled", "embed_worker_interval": 0})
    return create_app(store=store, settings=settings)


def _events(http: TestClient, path: str) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], ""
    with http.stream("GET", path) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
    return events


def _wait(http: TestClient, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        report: dict[str, Any] = http.get(path).json()
        if report["status"] not in ("pending", "running"):
            return report
        time.sleep(0.05)
    raise AssertionError(f"{path} did not finish")


# --- the records, through the library, on every backend ------------------------------------


def test_jobs_are_listed_and_read_from_their_records(store: ctxbase.Store) -> None:
    reports = [
        _report(),
        _report("reembed"),
        _report(status="running"),
        _report("reembed", status="failed"),
    ]
    for report in reports:
        record_job(store.db, report, {HOME_COPY: True} if report.kind == "migration" else {})
    listed = store.jobs.list()
    assert [j.id for j in listed.items] == [r.id for r in reversed(reports)]  # newest first
    assert [j.id for j in store.jobs.list(kind="reembed").items] == [reports[3].id, reports[1].id]
    assert [j.id for j in store.jobs.list(status="running").items] == [reports[2].id]
    first = store.jobs.list(limit=3)
    rest = store.jobs.list(limit=3, cursor=first.next_cursor)
    assert [j.id for j in first.items + rest.items] == [j.id for j in listed.items]
    got = store.jobs.get(str(reports[1].id))
    assert (got.kind, got.status, got.progress.rows) == ("reembed", "completed", {"memories": 5})
    with pytest.raises(NotFoundError):
        store.jobs.get(uuid.uuid4())
    with pytest.raises(ctxbase.InvalidInputError):
        store.jobs.list(kind="backup")  # type: ignore[arg-type]
    tenant_view = store.scoped(Scope(tenant="default", server_admin=False))
    with pytest.raises(PermissionDeniedError):
        tenant_view.jobs.list()
    # Neither a re-embedding nor a server's copy of a job recorded elsewhere marks this
    # database as holding part of a migration's data: it still opens and is healthy.
    with store.db.connect() as connection:
        assert unfinished_migrations(connection) == []
    assert store.check_connection().status != "error"


def test_a_running_reembed_record_does_not_stop_the_database_from_opening(
    persistent_database_url: str,
) -> None:
    with open_store(persistent_database_url) as store:
        record_job(store.db, _report("reembed", status="running"), {})
        record_job(store.db, _report(status="cancelled"), {HOME_COPY: True})
    with open_store(persistent_database_url) as again:
        assert len(again.jobs.list().items) == 2


# --- re-embedding over HTTP, on every backend -----------------------------------------------


def test_reembedding_is_a_job_read_and_streamed_after_a_restart(store: ctxbase.Store) -> None:
    store.memories.add("the staging cluster is down")
    store.contexts.add("runbook", "restart the staging cluster")
    with TestClient(_app(store)) as http:
        started = http.post(f"{API}/embeddings/reembed", json={"model": "hash:32"})
        assert started.status_code == 202, started.text
        job = started.json()
        assert (job["kind"], job["model"], job["target"]["model"]) == (
            "reembed",
            "hash:32",
            "hash:32",
        )
        assert job["source"]["model"] == "hash:64" and job["status"] in ("running", "completed")
        events = _events(http, f"{API}/jobs/{job['id']}/stream")
        assert events[-1] == ("end", {"status": "completed"})
        done = _wait(http, f"{API}/jobs/{job['id']}")
        assert done["progress"]["percent"] == 100 and done["finished_at"]
        assert done["progress"]["rows"] == done["progress"]["totals"]
        assert sum(done["progress"]["totals"].values()) == 2
        assert http.get(f"{API}/embeddings").json()["active_model"] == "hash:32"
    # A restart: the job is still there, under the same id, and its stream ends at once.
    with TestClient(_app(store)) as http:
        listed = http.get(f"{API}/jobs", params={"kind": "reembed"}).json()["items"]
        assert [j["id"] for j in listed] == [job["id"]]
        assert http.get(f"{API}/jobs/{job['id']}").json()["status"] == "completed"
        events = _events(http, f"{API}/jobs/{job['id']}/stream")
        assert [name for name, _ in events] == ["progress", "end"]
        assert http.get(f"{API}/migrations/{job['id']}").status_code == 404  # not a migration
        assert http.get(f"{API}/jobs/{uuid.uuid4()}").status_code == 404
        assert http.get(f"{API}/jobs", params={"kind": "backup"}).status_code == 422
    assert store.jobs.get(job["id"]).kind == "reembed"


# --- migrations: the target's configuration shows `migrating` -------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Iterator[ctxbase.Store]:
    with open_store(f"sqlite:///{tmp_path / 'home.db'}") as store:
        yield store


@pytest.fixture
def paused(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Migrations started meanwhile wait for this event before copying anything."""
    go = threading.Event()
    run = transfer.PreparedMigration.run

    def waiting(self: transfer.PreparedMigration) -> MigrationReport:
        assert go.wait(60)
        return run(self)

    monkeypatch.setattr(transfer.PreparedMigration, "run", waiting)
    yield go
    go.set()


@pytest.fixture(params=["sqlite", "postgresql"])
def target_config(
    request: pytest.FixtureRequest, home: ctxbase.Store, tmp_path: Path
) -> Iterator[tuple[dict[str, Any], str]]:
    """A registered target database (its configuration's request body) and its URL."""
    if request.param == "sqlite":
        path = tmp_path / "target.db"
        yield {"name": "target", "kind": "sqlite", "sqlite_path": str(path)}, f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    with server.database() as url:
        parsed = make_url(url)
        body = {
            "name": "target",
            "kind": "postgresql",
            "host": parsed.query["host"],
            "database": parsed.database,
            "username": parsed.username,
        }
        yield body, url


def test_a_configuration_shows_migrating_while_a_job_writes_into_it(
    home: ctxbase.Store,
    source_url: str,
    target_config: tuple[dict[str, Any], str],
    paused: threading.Event,
) -> None:
    body, url = target_config
    with TestClient(_app(home)) as http:
        config = http.post(f"{API}/database-configs", json=body).json()
        assert http.post(f"{API}/database-configs/{config['id']}/test").json()["ok"]
        before = http.get(f"{API}/database-configs/{config['id']}").json()["status"]
        assert before == "tested"
        # Named by its configuration for SQLite, by its URL for PostgreSQL: either way the
        # job writes into the registered database.
        target = {"config": "target"} if body["kind"] == "sqlite" else {"url": url}
        started = http.post(
            f"{API}/migrations", json={"source": {"url": source_url}, "target": target}
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        shown = http.get(f"{API}/database-configs/{config['id']}").json()
        assert shown["status"] == "migrating"
        again = http.post(
            f"{API}/migrations", json={"source": {"url": source_url}, "target": target}
        )
        assert again.status_code == 409  # a job already writes into it
        assert http.post(f"{API}/database-configs/{config['id']}/activate").status_code == 409
        assert http.post(f"{API}/database-configs/{config['id']}/test").json()["ok"]
        assert http.get(f"{API}/database-configs/{config['id']}").json()["status"] == "migrating"
        running = http.get(f"{API}/jobs/{job_id}").json()
        assert running["kind"] == "migration" and running["status"] in ("pending", "running")
        paused.set()
        report = _wait(http, f"{API}/migrations/{job_id}")
        assert report["status"] == "completed" and report["verification"]["passed"]
        assert http.get(f"{API}/database-configs/{config['id']}").json()["status"] == before
    # After a restart: listed and read from the home database's record, same id.
    with TestClient(_app(home)) as http:
        assert [j["id"] for j in http.get(f"{API}/migrations").json()["items"]] == [job_id]
        assert [j["id"] for j in http.get(f"{API}/jobs").json()["items"]] == [job_id]
        recorded = http.get(f"{API}/migrations/{job_id}").json()
        assert recorded["status"] == "completed" and recorded["progress"]["percent"] == 100
        assert recorded["verification"]["passed"]
        assert recorded["options"][HOME_COPY] is True
        events = _events(http, f"{API}/migrations/{job_id}/stream")
        assert events[-1] == ("end", {"status": "completed"})
        assert http.post(f"{API}/migrations/{job_id}/cancel").status_code == 409  # ended
    # The job's own record is in the target, as before.
    with open_store(url) as target:
        assert target.jobs.get(job_id).status == "completed"


def test_a_job_that_cannot_start_gives_the_configuration_its_status_back(
    home: ctxbase.Store, tmp_path: Path
) -> None:
    with TestClient(_app(home)) as http:
        path = tmp_path / "t.db"
        config = http.post(
            f"{API}/database-configs",
            json={"name": "t", "kind": "sqlite", "sqlite_path": str(path)},
        ).json()
        absent = f"sqlite:///{tmp_path / 'absent.db'}"
        answer = http.post(
            f"{API}/migrations", json={"source": {"url": absent}, "target": {"config": "t"}}
        )
        assert answer.status_code == 422
        assert http.get(f"{API}/database-configs/{config['id']}").json()["status"] == "configured"


def test_jobs_of_a_server_process_that_died_are_cancelled_at_the_next_start(
    home: ctxbase.Store, tmp_path: Path
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_runner = {**this_process(), "pid": int(dead.stdout)}
    config = home.databases.add(name="t", kind="sqlite", sqlite_path=str(tmp_path / "t.db"))
    home.databases.test("t")
    config_id, previous = home.databases.mark_migrating("t")
    assert (config_id, previous) == (config.id, "tested")
    orphan = _report(status="running")
    record_job(
        home.db,
        orphan,
        {
            HOME_COPY: True,
            RUNNER: dead_runner,
            TARGET_CONFIGS: [{"id": str(config_id), "previous_status": previous}],
        },
    )
    reembed = _report("reembed", status="running")
    record_job(home.db, reembed, {RUNNER: dead_runner})
    alive = _report("reembed", status="running")
    record_job(home.db, alive, {RUNNER: this_process()})
    elsewhere = _report(status="running")
    record_job(home.db, elsewhere, {HOME_COPY: True, RUNNER: {"host": "elsewhere", "pid": 1}})
    with TestClient(_app(home)) as http:
        stopped = http.get(f"{API}/jobs/{orphan.id}").json()
        assert stopped["status"] == "cancelled" and stopped["finished_at"]
        assert "stopped" in stopped["error_log"][-1]["error"]
        assert "--resume" in stopped["error_log"][-1]["error"]
        assert http.get(f"{API}/jobs/{reembed.id}").json()["status"] == "cancelled"
        assert http.get(f"{API}/jobs/{alive.id}").json()["status"] == "running"
        assert http.get(f"{API}/jobs/{elsewhere.id}").json()["status"] == "running"
        assert http.get(f"{API}/database-configs/{config_id}").json()["status"] == "tested"


# --- migrations: resumed over HTTP, under the same id ---------------------------------------


@pytest.fixture
def cancelled_midway(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first migration started meanwhile is cancelled once it has copied 300 memories."""
    cancel_first_run(monkeypatch, "memories", 300)


def test_a_cancelled_migration_resumes_into_its_configuration_and_verifies(
    home: ctxbase.Store,
    source_url: str,
    target_config: tuple[dict[str, Any], str],
    cancelled_midway: None,
) -> None:
    body, url = target_config
    with TestClient(_app(home)) as http:
        config = http.post(f"{API}/database-configs", json=body).json()
        config_url = f"{API}/database-configs/{config['id']}"
        before = http.get(config_url).json()["status"]
        started = http.post(
            f"{API}/migrations",
            json={"source": {"url": source_url}, "target": {"config": "target"}, "batch_size": 100},
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        stopped = _wait(http, f"{API}/migrations/{job_id}")
        assert stopped["status"] == "cancelled"
        assert 0 < stopped["progress"]["rows"]["memories"] < 1500
        assert http.get(config_url).json()["status"] == before

        resumed = http.post(f"{API}/migrations/{job_id}/resume")  # no body: its target
        assert resumed.status_code == 202, resumed.text
        assert resumed.json()["id"] == job_id
        assert resumed.json()["status"] in ("pending", "running", "completed")
        report = _wait(http, f"{API}/migrations/{job_id}")
        assert report["status"] == "completed", report["error_log"]
        assert report["verification"]["passed"] and report["progress"]["percent"] == 100
        assert http.get(config_url).json()["status"] == before
        assert [j["id"] for j in http.get(f"{API}/migrations").json()["items"]] == [job_id]
        assert http.post(f"{API}/migrations/{job_id}/resume").status_code == 409  # finished
        audited = http.get(f"{API}/audit", params={"action": "migration.resume"}).json()
        assert [e["target"] for e in audited["items"]] == [job_id]
    # After a restart, the home record holds the resumed run's end, under the same id.
    with TestClient(_app(home)) as http:
        recorded = http.get(f"{API}/migrations/{job_id}").json()
        assert recorded["status"] == "completed" and recorded["verification"]["passed"]
        assert recorded["options"][HOME_COPY] is True and recorded["finished_at"]
    with open_store(url) as target:
        assert target.jobs.get(job_id).status == "completed"
    assert_same_data(source_url, url)


def test_what_cannot_be_resumed_is_refused(
    home: ctxbase.Store, source_url: str, tmp_path: Path, paused: threading.Event
) -> None:
    url = f"sqlite:///{tmp_path / 'unregistered.db'}"
    with TestClient(_app(home)) as http:
        assert http.post(f"{API}/migrations/{uuid.uuid4()}/resume").status_code == 404
        job_id = http.post(
            f"{API}/migrations", json={"source": {"url": source_url}, "target": {"url": url}}
        ).json()["id"]
        resume = f"{API}/migrations/{job_id}/resume"
        running = http.post(resume, json={"target": {"url": url}})
        assert running.status_code == 409 and "this server process" in running.text
        assert http.post(f"{API}/migrations/{job_id}/cancel").status_code == 202
        paused.set()
        assert _wait(http, f"{API}/migrations/{job_id}")["status"] == "cancelled"

        unknown = http.post(resume)  # a URL no configuration names: the target is not known
        assert unknown.status_code == 422
        assert unknown.json()["error"]["message"].startswith("target:")
        for bad in ({"target": {"config": "a", "url": url}}, {"tagret": {"url": url}}):
            assert http.post(resume, json=bad).status_code == 422, bad
        assert http.post(resume, json={"target": {"config": "nope"}}).status_code == 404

        resumed = http.post(resume, json={"target": {"url": url}, "source": {"url": source_url}})
        assert resumed.status_code == 202, resumed.text
        report = _wait(http, f"{API}/migrations/{job_id}")
        assert report["status"] == "completed" and report["verification"]["passed"]

        elsewhere = _report(status="running")
        record_job(home.db, elsewhere, {HOME_COPY: True, RUNNER: {"host": "elsewhere", "pid": 1}})
        other = http.post(f"{API}/migrations/{elsewhere.id}/resume", json={"target": {"url": url}})
        assert other.status_code == 409 and "another server process" in other.text
    assert_same_data(source_url, url)
