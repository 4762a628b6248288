"""A source store built once per module: every kind of record, and enough memories with
embeddings that a migration takes many batches."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select

from ctxbase.db.schema import Embedding, Memory, metadata, new_id, table, utcnow
from tests.conftest import open_store
from tests.transfer.data import fill


def add_memories(store: object, count: int, dimensions: int = 64) -> None:
    """``count`` memories with a vector each, written in bulk (the store API is per item)."""
    db = store.db  # type: ignore[attr-defined]
    rng = np.random.default_rng(3)
    now = utcnow()
    with db.connect(write=True) as connection:
        project_id = connection.execute(select(metadata.tables["projects"].c.id)).scalar()
        memories, vectors = [], []
        for i in range(count):
            memory_id = new_id()
            memories.append(
                {
                    "id": memory_id,
                    "project_id": project_id,
                    "content": f"fact {i} about tea",
                    "memory_type": "fact",
                    "importance": (i % 10) / 10,
                    "metadata": {"i": i},
                    "access_count": i % 3,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            vectors.append(
                {
                    "id": new_id(),
                    "project_id": project_id,
                    "memory_id": memory_id,
                    "model": "bulk:64",
                    "dimensions": dimensions,
                    "content_hash": f"{i:064x}",
                    "vector": rng.standard_normal(dimensions).astype(np.float32),
                    "created_at": now,
                }
            )
        connection.execute(insert(table(Memory)), memories)
        connection.execute(insert(table(Embedding)), vectors)


@pytest.fixture(scope="module")
def source_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "source.db"
    with open_store(f"sqlite:///{path}") as store:
        fill(store)
        add_memories(store, 1500)
    return path


@pytest.fixture
def source_url(source_template: Path, tmp_path: Path) -> Iterator[str]:
    """A fresh copy of the module's source store, as an SQLite file URL."""
    path = tmp_path / "source.db"
    shutil.copy(source_template, path)
    yield f"sqlite:///{path}"
