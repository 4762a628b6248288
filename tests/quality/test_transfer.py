"""Migration (with its verification) and export/import carry the quality tables: every
row, column and value equal on the other backend, and readable there through the API."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ctxbase import transfer
from ctxbase.db.database import Database
from ctxbase.transfer.archive import export_archive, import_archive
from tests.conftest import open_store
from tests.postgres import PostgresServer
from tests.quality.helpers import chat
from tests.transfer.data import assert_same_data, fill, settings, table_rows

QUALITY_TABLES = ["quality_metrics", "contradictions", "repetition_loops", "citations"]


def _fill_quality(url: str) -> str:
    """A store at ``url`` holding every kind of record, quality records of every shape
    among them; the id of the conversation they belong to."""
    with open_store(url) as store:
        fill(store, conversations=2, messages=3)
        c = chat(store, [("assistant", "Sorry, try again.")] * 3 + [("user", "stop ✓")])
        first, second, third, _ = (m.id for m in c.messages)
        store.quality.add_metric(c.id, metric="coherence", value=1 / 3, details={"n": [1, 2]})
        store.quality.add_metric(
            c.id, metric="relevance", value=-2.5e-7, measured_at=datetime(2025, 1, 2, tzinfo=UTC)
        )
        added = store.quality.add_contradiction(
            c.id, first_message_id=first, second_message_id=second, description="ü", severity="low"
        )
        store.quality.update_contradiction(c.id, added.id, status="resolved")
        store.quality.add_contradiction(c.id, first_message_id=second, second_message_id=third)
        store.quality.add_loop(c.id, pattern="p", message_ids=[first, third], details={"k": None})
        store.quality.detect_loops(c.id, save=True)
        cited = store.quality.add_citation(c.id, message_id=third, source_reference="doc:1")
        store.quality.update_citation(c.id, cited.id, status="failed", note="not found")
        store.quality.add_citation(c.id, message_id=first, source_reference="x", quoted_text="q")
        store.quality.compute_health(c.id, weights={"coherence": 1}, save=True)
        for name in QUALITY_TABLES:
            assert len(table_rows(store.db, name)) >= 2, name
        return str(c.id)


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    return url, _fill_quality(url)


def test_migration_copies_and_verifies_the_quality_tables(
    source: tuple[str, str], postgres: PostgresServer
) -> None:
    url, _ = source
    with postgres.database() as target:
        report = transfer.migrate(url, target, batch_size=2, settings=settings())
        assert report.status == "completed", report.error_log
        assert report.verification is not None and report.verification.passed
        for name in QUALITY_TABLES:
            checked = report.verification.tables[name]
            assert checked.equal and checked.target_rows >= 2, name
        assert_same_data(url, target)


@pytest.mark.parametrize("into", ["sqlite-file", "postgres"])
def test_export_and_import_keep_every_quality_record(
    source: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest, into: str
) -> None:
    url, conversation_id = source
    archive = tmp_path / "quality.jsonl.gz"
    with Database(url) as db:
        exported = export_archive(db, archive)
    assert all(exported.rows[name] >= 2 for name in QUALITY_TABLES)
    context: AbstractContextManager[str]
    if into == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres")
        context = server.database()
    else:
        context = nullcontext(f"sqlite:///{tmp_path / 'target.db'}")
    with context as target:
        with Database(target) as db:
            imported = import_archive(db, archive)
        assert {name: imported.rows[name] for name in QUALITY_TABLES} == {
            name: exported.rows[name] for name in QUALITY_TABLES
        }
        assert_same_data(url, target, [*QUALITY_TABLES, "conversations", "messages"])
        with open_store(url) as before, open_store(target) as after:
            for kind in ("metrics", "contradictions", "loops", "citations"):
                listed = [
                    getattr(s.quality, f"list_{kind}")(conversation_id).items
                    for s in (before, after)
                ]
                assert listed[0] == listed[1], kind
            report = after.quality.compute_health(conversation_id, weights={"coherence": 1})
            assert (
                report.health_score == after.conversations.get(conversation_id).health_score == 33
            )
