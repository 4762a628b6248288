"""The backlog worker survives one bad item: the rest of the backlog is embedded."""

from __future__ import annotations

import time

import numpy as np
import pytest

import ctxbase
from ctxbase.embeddings import EmbeddingError
from ctxbase.embeddings.hashing import HashEmbedder
from ctxbase.server.worker import MAX_ATTEMPTS, BacklogWorker
from ctxbase.store.embedding import Embeddings


class RefusingEmbedder(HashEmbedder):
    """A provider that refuses one text (as an API refuses an over-long input)."""

    def __init__(self, refused: str | None = None, error: type[Exception] = EmbeddingError):
        super().__init__(64)
        self.name = "hash:64"
        self.refused, self.error = refused, error

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.refused is None or any(self.refused in t for t in texts):
            raise self.error(f"refused: {texts!r}")
        return super().embed(texts)


def _pending(store: ctxbase.Store, content: str) -> ctxbase.Memory:
    """A memory stored while the provider was down: it waits in the backlog."""
    working = store.embeddings
    store.embeddings = Embeddings(store, RefusingEmbedder())
    try:
        return store.memories.add(content)
    finally:
        store.embeddings = working


def test_an_item_the_provider_refuses_does_not_hold_up_the_backlog(store: ctxbase.Store) -> None:
    store.embeddings = Embeddings(store, RefusingEmbedder("poison"))
    _pending(store, "first good memory")
    bad = _pending(store, "the poison memory")
    _pending(store, "second good memory")
    assert store.embeddings.pending()["memory"] == 3
    worker = BacklogWorker(store, interval=3600)
    assert worker.run_once() == 2
    assert store.embeddings.pending()["memory"] == 1
    assert worker.attempts[bad.id] == 1
    with pytest.raises(EmbeddingError):  # alone, it cannot be told from a provider down
        worker.run_once()
    assert worker.attempts[bad.id] == 1
    for attempt in range(2, MAX_ATTEMPTS + 1):
        _pending(store, f"good memory {attempt}")
        assert worker.run_once() == 1
    assert worker.set_aside == {bad.id}
    _pending(store, "last good memory")
    assert worker.run_once() == 1  # the set-aside item is not tried again
    assert store.embeddings.pending()["memory"] == 1


def test_a_provider_down_sets_nothing_aside(store: ctxbase.Store) -> None:
    store.embeddings = Embeddings(store, RefusingEmbedder())
    store.memories.add("one")
    store.memories.add("two")
    worker = BacklogWorker(store, interval=3600)
    for _ in range(MAX_ATTEMPTS + 1):
        with pytest.raises(EmbeddingError):
            worker.run_once()
    assert worker.set_aside == set() and not worker.attempts
    assert store.embeddings.pending()["memory"] == 2


def test_an_unexpected_error_does_not_end_the_worker_thread(store: ctxbase.Store) -> None:
    store.embeddings = Embeddings(store, RefusingEmbedder())
    store.memories.add("waits")
    store.embeddings = Embeddings(store, RefusingEmbedder(error=RuntimeError))
    worker = BacklogWorker(store, interval=0.02)
    worker.start()
    try:
        time.sleep(0.3)  # several runs, each failing with a RuntimeError
        assert worker._thread.is_alive()
        store.embeddings = Embeddings(store, RefusingEmbedder("nothing"))
        deadline = time.monotonic() + 10
        while store.embeddings.pending()["memory"]:
            assert time.monotonic() < deadline, "the worker stopped embedding"
            time.sleep(0.02)
    finally:
        worker.stop()
