"""Vectors are stored with their items, cached by content, and backfilled after failures."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select

import ctxbase
from ctxbase.db.schema import Embedding
from ctxbase.embeddings import EmbeddingError
from ctxbase.embeddings.hashing import HashEmbedder
from ctxbase.store.embedding import Embeddings
from tests.conftest import open_store


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__(32)
        self.name = "counting:32"
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return super().embed(texts)


class BrokenEmbedder(CountingEmbedder):
    def embed(self, texts: list[str]) -> np.ndarray:
        raise EmbeddingError("provider down")


def _vectors(store: ctxbase.Store) -> list[Embedding]:
    with store.db.session() as session:
        return list(session.scalars(select(Embedding)))


def test_every_kind_is_embedded_on_write(store: ctxbase.Store) -> None:
    chat = store.conversations.create()
    message = store.messages.append(chat.id, role="user", content="the build is red")
    unit = store.contexts.add("ci.yml", "steps: test")
    memory = store.memories.add("prefers green builds")
    rows = {(row.owner_kind, row.owner_id): row for row in _vectors(store)}
    assert set(rows) == {("message", message.id), ("context", unit.id), ("memory", memory.id)}
    row = rows[("message", message.id)]
    assert (row.model, row.dimensions) == ("hash:64", 64)
    # a message is embedded as a line of its transcript (here with no earlier turn)
    np.testing.assert_allclose(
        row.vector, HashEmbedder(64).embed(["user: the build is red"])[0], rtol=1e-6
    )
    assert store.embeddings.pending() == {"message": 0, "context": 0, "memory": 0}


def test_identical_text_is_embedded_once(backend: str, store: ctxbase.Store) -> None:
    embedder = CountingEmbedder()
    store.embeddings = Embeddings(store, embedder)
    store.memories.add("same words")
    store.memories.add("same words")
    turns = [{"role": "user", "content": "same words"}, {"role": "user", "content": "other"}]
    for _ in range(2):  # the same transcript twice: messages embedded with the same context
        store.messages.append_many(store.conversations.create().id, turns)
    assert embedder.calls == [["same words"], ["user: same words", "user: same words\nuser: other"]]
    assert len(_vectors(store)) == 6
    if backend == "sqlite-memory":
        return  # no second process can open it
    fresh = CountingEmbedder()  # another process: nothing in memory, the table still knows
    url = store.db.url.url.render_as_string(hide_password=False)
    with open_store(url, embedder=fresh) as other:
        other.contexts.add("notes", "same words")
    assert fresh.calls == []


def test_a_failing_provider_loses_no_write(store: ctxbase.Store) -> None:
    store.embeddings = Embeddings(store, BrokenEmbedder())
    chat = store.conversations.create()
    store.messages.append(chat.id, role="user", content="kept despite the outage")
    memory = store.memories.add("also kept")
    assert store.memories.get(memory.id).content == "also kept"
    assert _vectors(store) == []
    assert store.embeddings.pending() == {"message": 1, "context": 0, "memory": 1}

    working = CountingEmbedder()
    working.name = "counting:32"  # the same model, now reachable
    store.embeddings = Embeddings(store, working)
    progress: list[tuple[str, int]] = []
    assert store.embeddings.backfill(progress=lambda kind, n: progress.append((kind, n))) == 2
    assert sorted(progress) == [("memory", 1), ("message", 1)]
    assert store.embeddings.pending() == {"message": 0, "context": 0, "memory": 0}
    assert store.embeddings.backfill() == 0


def test_embed_on_write_is_per_kind() -> None:
    with open_store("sqlite://", embed_on_write=["memory"]) as store:
        chat = store.conversations.create()
        store.messages.append(chat.id, role="user", content="not embedded")
        store.memories.add("embedded")
        assert [row.owner_kind for row in _vectors(store)] == ["memory"]
        assert store.embeddings.pending() == {"memory": 0}


def test_changed_memory_text_gets_a_new_vector(store: ctxbase.Store) -> None:
    memory = store.memories.add("likes tea")
    store.memories.update(memory.id, content="likes coffee")
    (row,) = _vectors(store)
    np.testing.assert_allclose(row.vector, HashEmbedder(64).embed(["likes coffee"])[0], rtol=1e-6)
    store.memories.update(memory.id, importance=0.9)  # text unchanged: vector kept
    assert [r.id for r in _vectors(store)] == [row.id]
    store.memories.delete(memory.id)
    assert _vectors(store) == []


def test_no_embedder_stores_no_vectors(tmp_path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'plain.db'}", embedder="none") as store:
        store.memories.add("plain")
        assert _vectors(store) == []
        assert store.embeddings.pending() == {}
        assert store.embeddings.model is None


def test_context_versions_each_get_a_vector(store: ctxbase.Store) -> None:
    first = store.contexts.add("a.md", "alpha")
    second = store.contexts.update(first.id, content="beta")
    owners = {row.owner_id for row in _vectors(store)}
    assert owners == {first.id, second.id}
    store.contexts.delete(first.id)
    with store.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Embedding)) == 0
