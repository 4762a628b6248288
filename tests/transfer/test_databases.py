"""store.databases: a PostgreSQL schema of its own, an SQLite file, and what is stored."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

import ctxbase
from ctxbase.db.schema import DatabaseConfig, table
from ctxbase.errors import ConflictError, InvalidInputError, NotFoundError
from tests.conftest import open_store
from tests.postgres import PostgresServer


def test_postgres_schema_and_sqlite_file(tmp_path: Path, postgres: PostgresServer) -> None:
    with open_store(f"sqlite:///{tmp_path / 'home.db'}") as home, postgres.database() as url:
        parsed = make_url(url)
        home.databases.add(
            name="tenant-a",
            kind="postgresql",
            host=parsed.query["host"],
            database=parsed.database,
            schema_name="tenant_a",
            username=parsed.username,
            password="pw-stored-encrypted",
            pool_size=2,
            max_overflow=1,
        )
        report = home.databases.initialize("tenant-a", require_pgvector=True)
        assert report.ok and report.schema_revision == report.head_revision
        with psycopg.connect(postgres.url(str(parsed.database))) as connection:
            schemas = {
                r[0]
                for r in connection.execute(
                    "SELECT table_schema FROM information_schema.tables"
                    " WHERE table_name = 'memories'"
                )
            }
        assert schemas == {"tenant_a"}
        stats = {s.table: s for s in home.databases.statistics("tenant-a")}
        assert stats["memories"].rows == 0 and (stats["memories"].bytes or 0) > 0
        settings = home.databases.settings_for("tenant-a")
        assert (settings.pool_size, settings.max_overflow) == (2, 1)
        with ctxbase.open(settings=settings, embedder=None) as store:
            store.memories.add("kept in tenant_a")

        home.databases.add(name="file", kind="sqlite", sqlite_path=str(tmp_path / "f.db"))
        assert home.databases.initialize("file").ok
        assert [s.rows for s in home.databases.statistics("file") if s.table == "tenants"] == [0]

        # the password is stored as a Fernet token, never in clear
        with home.db.connect() as connection:
            stored = connection.execute(select(table(DatabaseConfig).c.password_encrypted)).all()
        assert all(b"pw-stored" not in (token or b"") for (token,) in stored)

        assert home.databases.mark_active("file") is not None
        assert home.databases.mark_active("tenant-a") is not None
        assert [c.name for c in home.databases.list() if c.is_active] == ["tenant-a"]
        with pytest.raises(ConflictError):
            home.databases.delete("tenant-a")
        updated = home.databases.update("file", description="spare", sqlite_path="/tmp/g.db")
        assert (updated.description, updated.sqlite_path) == ("spare", "/tmp/g.db")
        with pytest.raises(InvalidInputError):
            home.databases.update("file", sqlite_path="")
        home.databases.delete("file")
        with pytest.raises(NotFoundError):
            home.databases.get("file")
