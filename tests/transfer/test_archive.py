"""Export to a portable archive and import it, across backends; bad archives are refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ctxbase.db.database import Database
from ctxbase.errors import ConflictError, InvalidInputError
from ctxbase.transfer import data_tables
from ctxbase.transfer.archive import export_archive, import_archive
from tests.conftest import open_store
from tests.postgres import PostgresServer
from tests.transfer.data import assert_fills_every_column, assert_same_data, table_rows


def test_full_export_imports_into_another_backend(
    source_url: str, tmp_path: Path, postgres: PostgresServer
) -> None:
    archive = tmp_path / "store.ctxbase.jsonl.gz"
    with Database(source_url) as db:
        assert_fills_every_column(db)  # every table and column has something to carry
        report = export_archive(db, archive, with_embeddings=True)
    assert report.rows["embeddings"] > 1500
    with gzip.open(archive, "rt") as file:
        header = json.loads(file.readline())
    assert (header["format"], header["version"]) == ("ctxbase-archive", 1)
    with postgres.database() as target:
        with Database(target) as db:
            imported = import_archive(db, archive)
        assert imported.rows == {k: v for k, v in report.rows.items() if v}
        assert_same_data(source_url, target, [t for t in data_tables() if t != "database_configs"])
        # and back, exported from PostgreSQL into SQLite
        with Database(target) as db:
            export_archive(db, tmp_path / "back.jsonl.gz", with_embeddings=True)
    back = f"sqlite:///{tmp_path / 'back.db'}"
    with Database(back) as db:
        import_archive(db, tmp_path / "back.jsonl.gz")
    assert_same_data(source_url, back)


def test_project_export_into_a_store_with_its_own_default_tenant(
    source_url: str, tmp_path: Path
) -> None:
    archive = tmp_path / "second.jsonl.gz"
    with Database(source_url) as db:
        export_archive(db, archive, project="second")
    target = f"sqlite:///{tmp_path / 'other.db'}"
    with open_store(target) as store:  # its own default tenant and project, other ids
        store.memories.add("already here")
        with Database(target) as db:
            report = import_archive(db, archive)
        assert "embeddings" not in report.rows  # exported without vectors
        assert not {"api_keys", "audit_log", "store_settings"} & set(report.rows)  # tenant-wide
        memories = store.memories.list(project="second").items
        assert {m.content for m in memories} == {
            "the user prefers green tea",
            "expires later",
            "totals are rounded per invoice",
            "scratch note of the review",
        }
        (owned,) = [m for m in memories if m.owner_conversation_id is not None]
        owner = store.conversations.get(owned.owner_conversation_id, project="second")
        assert owner.title == "reviewed"  # the memory still goes with its conversation
        latest = store.contexts.get_latest("notes second", project="second")
        assert len(store.contexts.versions(latest.id, project="second")) == 2
        assert [m.content for m in store.memories.list().items] == ["already here"]
        with pytest.raises(ConflictError, match="already holds data"):
            with Database(target) as db:
                import_archive(db, archive)


def test_bad_archives_are_refused_without_writing(tmp_path: Path, source_url: str) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    not_gzip = tmp_path / "plain.txt"
    not_gzip.write_text("hello")
    newer = tmp_path / "newer.gz"
    with gzip.open(newer, "wt") as file:
        file.write(json.dumps({"format": "ctxbase-archive", "version": 99}) + "\n")
    truncated = tmp_path / "truncated.gz"
    with Database(source_url) as db:
        export_archive(db, tmp_path / "whole.gz")
    with gzip.open(tmp_path / "whole.gz", "rt") as file:
        lines = file.readlines()
    with gzip.open(truncated, "wt") as file:
        file.writelines(lines[:-1])
    with Database(target) as db:
        for path, message in (
            (not_gzip, "Not a readable ctxbase archive"),
            (newer, "newer than this ctxbase reads"),
            (truncated, "truncated"),
            (tmp_path / "missing.gz", "No such file"),
        ):
            with pytest.raises(InvalidInputError, match=message):
                import_archive(db, path)
        assert table_rows(db, "memories") == []
