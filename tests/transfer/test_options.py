"""Migration options and sources: an in-memory store, re-embedding with the target's
model, an archive from another ctxbase version."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from ctxbase import transfer
from ctxbase.db.database import Database
from ctxbase.transfer.archive import export_archive, import_archive
from tests.conftest import open_store
from tests.transfer.data import fill, settings, table_rows


def test_in_memory_store_to_a_file(tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'kept.db'}"
    with open_store("sqlite://") as memory:
        fill(memory, conversations=1)
        report = transfer.migrate(memory, target, settings=settings())
        assert report.status == "completed" and report.source["database"] == ":memory:"
        with Database(target) as db:
            for name in transfer.data_tables():
                assert table_rows(memory.db, name) == table_rows(db, name), name


def test_reembed_with_the_target_model(source_url: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    options = settings().model_copy(update={"embedder": "hash:32"})
    report = transfer.migrate(
        source_url, target, tables=None, reembed=True, settings=options, batch_size=1000
    )
    assert report.status == "completed", report.error_log
    with open_store(target, embedder="hash:32") as store:
        assert store.embeddings.active_model() == store.embeddings.model
        assert sum(store.embeddings.pending().values()) == 0


def test_archive_from_another_version(source_url: str, tmp_path: Path) -> None:
    original, edited = tmp_path / "a.gz", tmp_path / "b.gz"
    with Database(source_url) as db:
        export_archive(db, original)
    with gzip.open(original, "rt") as file:
        lines = [json.loads(line) for line in file]
    lines[0].update(ctxbase="0.0.1", schema="0003")
    for line in lines[1:-1]:
        if line.get("table") == "memories":
            line["row"]["legacy_score"] = 3  # a column this version does not have
            line["row"].pop("access_count")  # a column that version did not have
    with gzip.open(edited, "wt") as file:
        file.writelines(json.dumps(line) + "\n" for line in lines)
    with Database(f"sqlite:///{tmp_path / 'new.db'}") as db:
        report = import_archive(db, edited)
        assert report.skipped_columns == ["memories.legacy_score"]
        rows = table_rows(db, "memories")
    assert rows and {row["access_count"] for row in rows} == {0}
