"""check_connection() and the failures it must explain, on real servers."""

from __future__ import annotations

import logging
import socket
import uuid

import psycopg
import pytest

import ctxbase
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.diagnostics import ConnectionReport, check_connection
from ctxbase.errors import DatabaseUnavailableError
from tests.conftest import open_store
from tests.postgres import PostgresServer

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _check(url: str) -> ConnectionReport:
    with Database(url) as db:
        return check_connection(db)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_report_on_every_backend(store: ctxbase.Store, backend: str) -> None:
    report = store.check_connection()
    assert report.schema_revision == report.head_revision == migrate.head_revision()
    assert report.pending_migrations == []
    assert report.server_version
    if backend == "postgres-novector":
        assert report.status == "degraded"
        assert [p.code for p in report.problems] == ["pgvector_missing"]
        assert report.pgvector is not None and not report.pgvector.installed
        assert report.vector_storage == "bytes"
        assert not store.db.backend.has_vector_type
        return
    assert report.status == "ok", report.problems
    if backend == "postgres":
        assert report.pgvector is not None
        assert report.pgvector.installed and report.pgvector.version
        assert report.vector_storage == "pgvector"
        assert report.port and report.database
        assert store.db.backend.has_vector_type
    else:
        assert report.pgvector is None
        assert report.vector_storage == "bytes"


def test_unreachable_server() -> None:
    url = f"postgresql://someone:hunter2@127.0.0.1:{_free_port()}/db"
    report = _check(url)
    assert report.status == "error"
    assert report.problems[0].code == "database_unavailable"
    assert "unreachable" in report.problems[0].message
    assert "hunter2" not in report.model_dump_json()
    with pytest.raises(DatabaseUnavailableError):
        open_store(url)


def test_missing_database(postgres: PostgresServer) -> None:
    report = _check(postgres.url("no_such_database_here"))
    assert report.status == "error"
    assert "does not exist" in report.problems[0].message
    assert report.problems[0].hint


@pytest.fixture
def password_user(postgres: PostgresServer) -> tuple[str, str]:
    """A role that must log in with a password (needs the embedded server's pg_hba.conf)."""
    if postgres.pgdata is None:
        pytest.skip("needs the embedded PostgreSQL, whose authentication rules tests may edit")
    user, password = f"pw_{uuid.uuid4().hex[:8]}", "right-Pa55word"
    postgres.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
    hba = postgres.pgdata / "pg_hba.conf"
    rules = hba.read_text()
    hba.write_text(
        f"local all {user} scram-sha-256\nhost all {user} 127.0.0.1/32 scram-sha-256\n" + rules
    )
    postgres.execute("SELECT pg_reload_conf()")
    return user, password


def test_wrong_password(postgres: PostgresServer, password_user: tuple[str, str]) -> None:
    user, password = password_user
    right = postgres.url("postgres", user=user, password=password)
    assert _check(right).status != "error"
    wrong = postgres.url("postgres", user=user, password="not-the-password")
    report = _check(wrong)
    assert report.status == "error"
    assert "wrong user name or password" in report.problems[0].message
    assert "not-the-password" not in report.model_dump_json()


def test_no_permission_to_create_the_extension(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-superuser owning its database: the schema upgrades, pgvector is reported missing."""
    owner = f"owner_{uuid.uuid4().hex[:8]}"
    postgres.execute(f"CREATE ROLE {owner} LOGIN")
    with postgres.database() as admin_url:
        name = admin_url.rsplit("/", 1)[1].split("?")[0]
        postgres.execute(f"ALTER DATABASE {name} OWNER TO {owner}")
        postgres.execute(f"GRANT ALL ON SCHEMA public TO {owner}", database=name)
        url = postgres.url(name, user=owner, password=None)
        with caplog.at_level(logging.WARNING, logger="ctxbase"), open_store(url) as store:
            report = store.check_connection()
            assert store.schema_revision == migrate.head_revision()
        assert report.status == "degraded"
        assert report.pgvector is not None
        assert (report.pgvector.installed, report.pgvector.available) == (False, True)
        assert "no permission" in (report.pgvector.problem or "")
        assert report.vector_storage == "bytes"
        assert [p.code for p in report.problems] == ["pgvector_missing"]
        assert any("pgvector unavailable" in r.getMessage() for r in caplog.records)
        postgres.execute(f"DROP OWNED BY {owner} CASCADE", database=name)
    postgres.execute(f"DROP ROLE {owner}")


@pytest.fixture
def local_postgres_without_pgvector() -> str:
    """A database on the PostgreSQL of this machine (5432), which has no pgvector."""
    try:
        with psycopg.connect(LOCAL_POSTGRES, autocommit=True, connect_timeout=3) as connection:
            has_vector = connection.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
            if has_vector:
                pytest.skip("the PostgreSQL on localhost:5432 has pgvector")
            name = f"ctxbase_nopgv_{uuid.uuid4().hex[:8]}"
            connection.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    except psycopg.OperationalError as e:
        pytest.skip(f"no PostgreSQL without pgvector on localhost:5432: {e}")
    yield LOCAL_POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(LOCAL_POSTGRES, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def test_postgres_without_pgvector(
    local_postgres_without_pgvector: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = local_postgres_without_pgvector
    with caplog.at_level(logging.WARNING, logger="ctxbase"), open_store(url) as store:
        report = store.check_connection()
        assert migrate.schema_differences(store.db) == []
        migrate.downgrade(store.db, "base")
        migrate.upgrade(store.db)
        assert migrate.schema_differences(store.db) == []
    assert report.status == "degraded"
    assert report.schema_revision == migrate.head_revision()
    assert report.pgvector is not None and not report.pgvector.available
    assert report.vector_storage == "bytes"
    assert "not installed on this PostgreSQL server" in report.problems[0].message
    assert report.problems[0].hint and "CREATE EXTENSION vector" in report.problems[0].hint
    warnings = [r.getMessage() for r in caplog.records if "pgvector unavailable" in r.getMessage()]
    assert warnings and "exact search" in warnings[0]
