"""Re-embedding: new vectors beside the old, searches never fail, the switch happens at the end."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from sqlalchemy import func, select

import ctxbase
from ctxbase.db.schema import Embedding
from ctxbase.db.vectors.base import reference_scores
from ctxbase.embeddings import EmbeddingError
from ctxbase.embeddings.hashing import HashEmbedder
from ctxbase.store.embedding import models as embedding_models
from tests.conftest import open_store

TEXTS = [f"note {i} about the staging cluster and deploy number {i % 7}" for i in range(60)]


def _models(store: ctxbase.Store) -> dict[str, int]:
    with store.db.session() as session:
        rows = session.execute(select(Embedding.model, func.count()).group_by(Embedding.model))
        return dict(rows.all())


def _populate(store: ctxbase.Store) -> None:
    chat = store.conversations.create()
    store.messages.append_many(chat.id, [{"role": "user", "content": t} for t in TEXTS[:20]])
    for i, text in enumerate(TEXTS[20:40]):
        store.contexts.add(f"doc-{i}", text)
    for text in TEXTS[40:]:
        store.memories.add(text)


def test_reembed_to_another_dimension_while_searching(store: ctxbase.Store) -> None:
    _populate(store)
    assert store.embeddings.active_model() == "hash:64"
    failures: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def keep_searching() -> None:
        while not stop.is_set():
            try:
                hits = store.search("staging cluster deploy", mode="vector", threshold=-1, k=5)
                counts.append(len(hits.hits))
                time.sleep(0.002)  # a client's pace; a tight loop would starve the in-memory pool
            except BaseException as e:
                failures.append(e)
                return

    searcher = threading.Thread(target=keep_searching)
    searcher.start()
    try:
        job = store.embeddings.reembed("hash:32", batch_size=7)
    finally:
        stop.set()
        searcher.join()
    assert failures == []
    assert counts and min(counts) == 5  # every search during the run found vectors
    assert job["status"] == "completed" and job["done"] == job["total"] == 60
    assert store.embeddings.active_model() == "hash:32"
    assert _models(store) == {"hash:64": 60, "hash:32": 60}

    # the new model now serves searches, with its own scores
    hits = store.search(
        "staging cluster deploy", kinds=["context"], mode="vector", threshold=-1, k=3
    ).hits
    embedder = HashEmbedder(32)
    expected = reference_scores(
        embedder.embed([h.item.content for h in hits]),
        embedder.embed(["staging cluster deploy"])[0],
        "cosine",
    )
    np.testing.assert_allclose([h.score for h in hits], expected, atol=1e-5)

    # new writes embed with the new model
    store.memories.add("written after the switch")
    assert _models(store)["hash:32"] == 61

    store.embeddings.reembed("hash:32", drop_old=True)
    assert _models(store) == {"hash:32": 61}


class FlakyEmbedder(HashEmbedder):
    """Fails on its third call, like a provider going down mid-run."""

    def __init__(self) -> None:
        super().__init__(16)
        self.calls = 0
        self.texts = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == 3:
            raise EmbeddingError("provider went away")
        self.texts += len(texts)
        return super().embed(texts)


def test_an_interrupted_reembed_resumes_without_redoing_work(store: ctxbase.Store) -> None:
    _populate(store)
    flaky = FlakyEmbedder()
    with pytest.raises(EmbeddingError):
        store.embeddings.reembed(flaky, batch_size=10)
    status = store.embeddings.reembed_status()
    assert status is not None and status["status"] == "failed"
    assert store.embeddings.active_model() == "hash:64"  # not switched
    assert _models(store)["hash:16"] == 20
    assert store.search("staging", mode="vector", threshold=-1).hits  # still served
    job = store.embeddings.reembed(flaky, batch_size=10)
    assert job["status"] == "completed" and job["total"] == 40
    assert flaky.texts == 60  # 20 before the failure, the other 40 after: none twice
    assert store.embeddings.active_model() == "hash:16"


def test_other_processes_follow_the_switch(
    persistent_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding_models, "ACTIVE_MODEL_TTL_SECONDS", 0.0)
    with (
        open_store(persistent_database_url) as server,
        open_store(persistent_database_url) as admin,
    ):
        server.memories.add("the staging cluster is down")
        admin.embeddings.reembed("hash:32")
        assert server.embeddings.model == "hash:32"
        hit = server.search("staging cluster", mode="vector", threshold=-1).hits[0]
        assert hit.retrieval_method == "vector"
        assert server.search("staging cluster", mode="vector", threshold=-1).fallback is None


def test_reembed_needs_a_model(store: ctxbase.Store) -> None:
    with pytest.raises(ctxbase.InvalidInputError):
        store.embeddings.reembed("none")
