"""The content / RAG platform (reference system 003) moves in.

Its guide keeps several database configurations with encrypted credentials on a settings
page for knowledge engineers: create, test, initialise (with pgvector), view statistics,
activate one; it migrates the content between them as a background job with progress
and a status of completed, completed with errors or failed; it generates embeddings in
batches and retrieves context by vector search with a similarity threshold, falling back
to a plain query when vectors find nothing. Each step here is ctxbase's public API doing
the same over its REST server (the settings page's API) and its command line.

The home database (where the configurations live) is the backend under test; the other
database is of the other kind: SQLite → PostgreSQL on ``sqlite-file``, PostgreSQL →
SQLite ("or vice versa") on ``postgres``.

Its tables map onto ctxbase's records as follows:

- ``DatabaseConfig`` → database configurations: ``db_type`` is ``kind``; host, port,
  database, schema, username, password (write-only, encrypted), sslmode, pool size, max
  overflow, sqlite path; ``status`` (configured, tested, active, migrating, error) and the
  pgvector flag.
- ``MigrationJob`` → migration jobs: source, target, progress (percent, rows per table,
  current table), totals, status, error log.
- ``content_instances`` → context units: the content type is ``source_type``, the
  instance's text the content, its ``data`` the metadata; ``embedding`` is the unit's
  stored vector. (Users and content types are the platform's own tables.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

import ctxbase
from ctxbase.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from ctxbase.records.imports import mapped_id
from tests.conftest import open_store
from tests.scenarios.conftest import Served, ok, serve

LESSONS = [
    ("fractions-5", "5th grade fractions lesson: adding fractions with unlike denominators"),
    ("decimals-5", "5th grade decimals lesson: place value to thousandths"),
    ("poetry-3", "3rd grade poetry lesson: rhyme and rhythm in short poems"),
    ("volcanoes-4", "4th grade science lesson: how volcanoes erupt"),
]


@dataclass
class Other:
    """A database besides the home one: the settings page's form for it, and its URL."""

    form: dict[str, Any]
    url: str


@dataclass
class Platform:
    home_url: str
    store: ctxbase.Store
    served: Served
    other: dict[str, Any]  # the form for the target database, of the other kind
    other_url: str
    source: Other  # the development database holding the data, of the home's kind


def sqlite_form(path: Path, name: str) -> Other:
    form = {
        "name": name,
        "description": "Local SQLite database",
        "kind": "sqlite",
        "sqlite_path": str(path),
    }
    return Other(form, f"sqlite:///{path}")


def postgres_form(url: str, name: str) -> Other:
    parsed = make_url(url)
    form = {
        "name": name,
        "description": "PostgreSQL with pgvector for vector search",
        "kind": "postgresql",
        "host": parsed.query["host"],
        "database": parsed.database,
        "schema_name": "public",
        "username": parsed.username,
        "password": "correct horse battery staple",
        "sslmode": "prefer",
        "pool_size": 5,
        "max_overflow": 10,
    }
    return Other(form, url)


@pytest.fixture
def other_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Other]:
    """An empty database of the other kind than the home database."""
    if backend == "postgres":
        yield sqlite_form(tmp_path / "content.db", "development")
        return
    with request.getfixturevalue("postgres").database() as url:
        yield postgres_form(url, "production")


@pytest.fixture
def source_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Other]:
    """An empty database of the home database's kind, to hold the data to migrate."""
    if backend == "sqlite-file":
        yield sqlite_form(tmp_path / "development.db", "source")
        return
    with request.getfixturevalue("postgres").database() as url:
        yield postgres_form(url, "source")


@pytest.fixture
def platform(
    database_url: str, other_database: Other, source_database: Other
) -> Iterator[Platform]:
    """The platform's server on its home database, the database to configure and migrate
    into, and the database the data is in. (Migrating out of the served SQLite file
    itself: see ``test_migrating_out_of_the_served_sqlite_file_keeps_it_shared``.)"""
    with open_store(database_url) as store, serve(store) as served:
        yield Platform(
            database_url,
            store,
            served,
            other_database.form,
            other_database.url,
            source_database,
        )


def add_lessons(api: Any) -> list[Any]:
    return [
        api.contexts.add(
            name, text, source_type="lesson", metadata={"grade": int(name[-1]), "title": text}
        )
        for name, text in LESSONS
    ]


def wait_for(client: ctxbase.Client, job_id: object) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        report = client.migrations.get(job_id)  # type: ignore[arg-type]
        if report.status not in ("pending", "running"):
            return report
        time.sleep(0.05)
    raise AssertionError("the migration did not finish")


# --- Settings > Database Settings ----------------------------------------------------------


def test_configure_test_initialise_migrate_and_activate(platform: Platform) -> None:
    """Steps 1 to 5 of "Setting Up PostgreSQL Database", through the settings page's API."""
    with platform.served.client() as client:
        with open_store(platform.source.url) as source:  # the existing data
            lessons = add_lessons(source)
        client.databases.add(**platform.source.form)

        # 1. Create the configuration: the password goes in, never comes out.
        form = platform.other
        wrong = {**form, "name": "typo"}
        if form["kind"] == "postgresql":
            wrong["database"] = "nova_content_missing"
        else:  # a path that holds something else than a database
            not_a_database = Path(form["sqlite_path"]).with_name("notes.txt")
            not_a_database.write_text("meeting notes, not a database\n")
            wrong["sqlite_path"] = str(not_a_database)
        config = client.databases.add(**form)
        assert config.status == "configured" and not config.is_active
        dumped = json.dumps(config.model_dump(mode="json"))
        assert "correct horse" not in dumped and "password" not in config.model_dump()
        if form["kind"] == "postgresql":
            assert config.has_password and config.pool_size == 5

        # 2. Test the connection (and a configuration that cannot connect).
        tested = client.databases.test(config.id)
        assert tested.ok and tested.server_version and tested.schema_revision is None
        if form["kind"] == "postgresql":
            assert tested.pgvector is not None and tested.pgvector.available
        typo = client.databases.add(**wrong)
        failed = client.databases.test(typo.id)
        assert not failed.ok and failed.reason
        assert client.databases.get(typo.id).status == "error"
        client.databases.delete(typo.id)
        with pytest.raises(NotFoundError):
            client.databases.get(typo.id)

        # 3. Initialise the schema, enabling pgvector.
        initialised = client.databases.initialize(
            config.id, require_pgvector=form["kind"] == "postgresql"
        )
        assert initialised.ok and initialised.schema_revision == initialised.head_revision
        if form["kind"] == "postgresql":
            assert client.databases.get(config.id).pgvector_enabled

        # 4. Migrate the data, following its progress.
        job = client.migrations.start(source={"config": "source"}, target={"config": form["name"]})
        assert job.status in ("pending", "running", "completed")
        report = wait_for(client, job.id)
        assert report.status == "completed", report.error_log
        assert report.progress.percent == 100
        assert report.verification is not None and report.verification.passed
        assert report.progress.rows["context_units"] == len(LESSONS)
        assert report.progress.totals["context_units"] == len(LESSONS)
        assert job.id in {j.id for j in client.migrations.list()}
        assert "correct horse" not in json.dumps(report.model_dump(mode="json"))
        stats = {s.table: s.rows for s in client.databases.statistics(config.id)}
        assert stats["context_units"] == len(LESSONS)

        # 5. Activate: the running server serves it from now on; only one is active.
        activated = client.databases.activate(config.id)
        assert activated.is_active and activated.status == "active"
        assert [c.name for c in client.databases.list() if c.is_active] == [form["name"]]
        served = client.contexts.list(source_type="lesson").items
        assert sorted(u.id for u in served) == sorted(u.id for u in lessons)
        client.contexts.add("new-lesson", "written after the switch", source_type="lesson")
        with pytest.raises(ConflictError):  # the active configuration cannot be deleted
            client.databases.delete(config.id)
    assert platform.store.contexts.list().items == []  # the home database keeps the settings
    with open_store(platform.source.url) as source:  # the source is left as it was
        assert len(source.contexts.list(source_type="lesson").items) == len(LESSONS)
    with open_store(platform.other_url) as other:
        assert other.contexts.get_latest("new-lesson").content == "written after the switch"


def test_migration_progress_stream(platform: Platform) -> None:
    """ "View migration progress in real-time": the job's progress events, then its end."""
    with platform.served.client() as client:
        with open_store(platform.source.url) as source:
            for i in range(30):
                source.memories.add(f"fact {i} about fractions", importance=i / 30)
        config = client.databases.add(**platform.other)
        client.databases.initialize(config.id)
        job = client.migrations.start(
            source={"url": platform.source.url},
            target={"config": str(config.id)},
            batch_size=10,
            reembed=True,  # "Generate embeddings during migration"
        )
        reports = list(client.migrations.stream(job.id))  # progress events, then the end
        assert reports and reports[-1].status == "completed"
        percents = [r.progress.percent for r in reports]
        assert percents == sorted(percents) and percents[-1] == 100
        final = client.migrations.get(job.id)
        assert final.status == "completed" and final.progress.rows["memories"] == 30
        assert final.options["reembed"] is True


def test_only_administrators_manage_databases(platform: Platform) -> None:
    """ "Only knowledge engineers and admin roles can create configurations, test, initialise,
    migrate, generate embeddings": other keys are refused."""
    store = platform.store
    writer = store.keys.create(role="writer", name="editor").key
    tenant_admin_tenant = store.tenants.create("school")
    assert tenant_admin_tenant.slug == "school"
    tenant_admin = store.keys.create(tenant="school", role="admin").key
    for key in (writer, tenant_admin):
        with platform.served.client(key) as client:
            with pytest.raises(PermissionDeniedError):
                client.databases.add(**platform.other)
            with pytest.raises(PermissionDeniedError):
                client.databases.list()
            with pytest.raises(PermissionDeniedError):
                client.migrations.start(
                    source={"url": platform.home_url}, target={"url": platform.other_url}
                )
            with pytest.raises(PermissionDeniedError):
                client.embeddings.start_reembed("hash:32")


# --- Vector search ---------------------------------------------------------------------------


def test_generate_embeddings_then_search_with_a_threshold(
    database_url: str, tmp_path: Path
) -> None:
    """ "Generate Embeddings" for content written without them, then semantic search with
    the 0.7 threshold (0.5 when lowered); before that, retrieval falls back to full text and
    says so."""
    with open_store(database_url, embed_on_write=[]) as store:
        units = add_lessons(store)
        assert store.embeddings.pending(["context"]) == {"context": len(LESSONS)}
        before = store.search("fractions lesson", kinds=["context"], mode="vector")
        assert before.fallback and before.hits  # "falls back to SQL query"
        assert {h.retrieval_method for h in before.hits} == {"text"}
        assert before.hits[0].id == units[0].id

    # "Generate Embeddings": a background task in batches, with progress
    output = ok("embed", "--batch-size", "2", "-d", database_url)
    assert output is not None
    with open_store(database_url) as store:
        assert store.embeddings.pending(["context"]) == {"context": 0}
        exact = store.search(LESSONS[0][1], kinds=["context"], mode="vector")
        assert exact.fallback is None
        assert exact.hits[0].id == units[0].id and exact.hits[0].retrieval_method == "vector"
        assert exact.hits[0].score >= 0.7  # the default threshold
        assert all(h.score >= 0.7 for h in exact.hits)
        lowered = store.search(
            "5th grade lesson fractions", kinds=["context"], mode="vector", threshold=0.5, k=5
        )
        assert lowered.hits and all(h.score >= 0.5 for h in lowered.hits)
        assert lowered.hits[0].item.metadata["grade"] == 5
        filtered = store.search(
            "lesson", kinds=["context"], mode="hybrid", filters={"source_type": "lesson"}, k=10
        )
        assert {h.item.source_type for h in filtered.hits} == {"lesson"}


def test_embeddings_over_rest(platform: Platform) -> None:
    """The Vector Search section's API: the backlog, a re-embedding job, its status."""
    with platform.served.client() as client:
        add_lessons(client)
        status = client.embeddings.status()
        assert status.active_model and status.pending.get("context", 0) == 0
        started = client.embeddings.start_reembed("hash:32", batch_size=2)
        deadline = time.monotonic() + 60
        while (run := client.jobs.get(started["id"])).status in ("pending", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert run.status == "completed", run.error_log
        assert client.embeddings.reembed_status()["status"] == "completed"
        assert client.embeddings.status().active_model == "hash:32"
        hits = client.search(LESSONS[1][1], kinds=["context"], mode="vector").hits
        assert hits[0].item.name == "decimals-5" and hits[0].retrieval_method == "vector"


def test_jobs_are_records_after_a_restart(platform: Platform) -> None:
    """ "MigrationJob" and the embedding generation are jobs: one id to poll and stream,
    listed by kind and status, still there after the server restarts ("Migration stuck in
    pending: restart the backend server")."""
    with platform.served.client() as client:
        with open_store(platform.source.url) as source:
            add_lessons(source)
        add_lessons(client)
        config = client.databases.add(**platform.other)
        client.databases.initialize(config.id)
        migration = client.migrations.start(
            source={"url": platform.source.url}, target={"config": str(config.id)}
        )
        wait_for(client, migration.id)
        # The configuration is given its status back when the job ends (a moment after
        # the job reads as completed).
        deadline = time.monotonic() + 10
        while client.databases.get(config.id).status == "migrating":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = client.embeddings.start_reembed("hash:32", batch_size=2)
        reembed_id = started["id"]
        reports = list(client.jobs.stream(reembed_id))
        assert reports[-1].status == "completed" and reports[-1].kind == "reembed", reports[-1]
    with serve(platform.store) as restarted, restarted.client() as client:
        jobs = client.jobs.list().items
        assert {(j.kind, j.status) for j in jobs} == {
            ("migration", "completed"),
            ("reembed", "completed"),
        }
        assert [j.id for j in client.jobs.list(kind="migration").items] == [migration.id]
        assert client.jobs.list(status="failed").items == []
        again = client.jobs.get(migration.id)
        assert again.progress.rows["context_units"] == len(LESSONS)
        assert str(client.jobs.get(reembed_id).id) == str(reembed_id)


def test_vector_search_without_a_hit_above_the_threshold_falls_back(
    store: ctxbase.Store,
) -> None:
    """ "Falls back to SQL query if vector search returns no results" and says so, as the
    retrieval's ``retrieval_method`` does."""
    add_lessons(store)
    result = store.search("rhyme poems", kinds=["context"], mode="vector", threshold=0.99)
    assert result.fallback and "threshold" in result.fallback
    assert result.hits and result.hits[0].item.name == "poetry-3"
    assert {hit.retrieval_method for hit in result.hits} == {"text"}
    found = store.search(LESSONS[2][1], kinds=["context"], mode="vector", threshold=0.7)
    assert found.fallback is None and found.hits[0].retrieval_method == "vector"


# --- The same from the command line -----------------------------------------------------------


def test_database_commands(database_url: str, other_database: Other) -> None:
    """``ctxbase databases add | test | init | stats | list | activate | deactivate`` and
    ``ctxbase migrate`` by the configuration's name, the password read from standard input.

    (Run while no store of this process has the home file open: see
    ``test_migrating_out_of_the_served_sqlite_file_keeps_it_shared``.)"""
    home = database_url
    with open_store(home) as store:
        add_lessons(store)
    form = other_database.form
    name = "cli-" + form["name"]
    args = ["databases", "add", name, "--kind", form["kind"], "-d", home]
    stdin = None
    if form["kind"] == "postgresql":
        args += ["--host", form["host"], "--database", form["database"]]
        args += ["--user", form["username"], "--password-stdin"]
        stdin = form["password"] + "\n"
    else:
        args += ["--sqlite-path", form["sqlite_path"]]
    assert "Registered" in ok(*args, stdin=stdin)
    assert "server version" in ok("databases", "test", name, "-d", home)
    ok("databases", "init", name, "-d", home)
    result = ok("migrate", "--from", home, "--to", name, "--json", "-d", home)
    report = json.loads(result[result.index("{") :])
    assert report["status"] == "completed" and report["verification"]["passed"]
    assert report["progress"]["rows"]["context_units"] == len(LESSONS)
    assert "context_units" in ok("databases", "stats", name, "-d", home)
    listed = ok("databases", "list", "-d", home)
    assert name in listed and "correct horse" not in listed
    ok("databases", "activate", name, "-d", home)
    with open_store(home) as store:
        (active,) = [c for c in store.databases.list() if c.is_active]
        assert active.name == name
    with open_store(other_database.url) as other:
        assert len(other.contexts.list(source_type="lesson").items) == len(LESSONS)
    ok("databases", "deactivate", "-d", home)
    with open_store(home) as store:
        assert not any(c.is_active for c in store.databases.list())


def test_migrating_out_of_the_served_sqlite_file_keeps_it_shared(
    platform: Platform, backend: str
) -> None:
    """ "Migrate Data" from the home SQLite database while the server serves it: afterwards
    the server and another process on the same file still see each other's writes."""
    if backend != "sqlite-file":
        pytest.skip("the home database is PostgreSQL: no SQLite file is shared")
    with platform.served.client() as client:
        add_lessons(client)
        job = client.migrations.start(
            source={"url": platform.home_url}, target={"url": platform.other_url}
        )
        assert wait_for(client, job.id).status == "completed"
        other_process = (
            "import ctxbase\n"
            f"store = ctxbase.open({platform.home_url!r}, embedder='hash:64')\n"
            "store.contexts.add('written-elsewhere', 'by another process')\n"
            "print(sorted(u.name for u in store.contexts.list(limit=100).items))\n"
        )
        client.contexts.add("written-by-the-server", "after the migration")
        seen_elsewhere = subprocess.run(
            [sys.executable, "-c", other_process], capture_output=True, text=True, check=True
        ).stdout
        assert "written-by-the-server" in seen_elsewhere
        names = {u.name for u in client.contexts.list(limit=100).items}
        assert "written-elsewhere" in names


# --- Moving in ------------------------------------------------------------------------------


def test_moving_in_content_instances(store: ctxbase.Store) -> None:
    """Its content instances come over as context units (the content type as
    ``source_type``, the data as metadata), in batches; a bad line stops its batch and,
    fixed, the same import run again with ``existing="skip"`` continues where it stopped.
    Then the RAG retrieval finds them by meaning."""
    instances = [
        {
            "kind": "context",
            "id": 120 + i,
            "name": name,
            "source_type": "lesson",
            "content": text,
            "metadata": {"grade": int(name[-1]), "title": text},
            "created_at": "2025-09-01T08:00:00Z",
        }
        for i, (name, text) in enumerate(LESSONS)
    ]
    bad = [*instances[:2], {**instances[2], "importance": 0.5}, instances[3]]
    with pytest.raises(InvalidInputError) as refused:
        store.imports.rows(bad, batch_size=2)
    assert "line 3" in str(refused.value)
    assert {u.name for u in store.contexts.list().items} == {"fractions-5", "decimals-5"}
    report = store.imports.rows(instances, batch_size=2, existing="skip")
    assert (report.written, report.skipped) == ({"context": 2}, {"context": 2})
    units = store.contexts.list(source_type="lesson").items
    assert {u.id for u in units} == {mapped_id("context", 120 + i) for i in range(4)}
    hit = store.search(LESSONS[3][1], kinds=["context"], mode="vector").hits[0]
    assert hit.item.metadata["grade"] == 4 and hit.retrieval_method == "vector"
