"""SQLite's in-memory vector index: in step with the table whoever writes it, and its HNSW
index finding what exact search finds; exact search's product on the searching thread."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ctxbase
from ctxbase.db.backends.sqlite import SQLiteBackend
from ctxbase.db.vectors import base, blas, memory
from ctxbase.db.vectors.base import reference_scores
from ctxbase.db.vectors.sqlite import SQLiteVectorIndex
from ctxbase.embeddings.hashing import HashEmbedder
from tests.conftest import open_store, store_on

DIMENSIONS = 32
TOPICS = 24
WORDS = [f"w{i}" for i in range(400)]
#: Small enough that every test here searches through the HNSW index.
HNSW_FROM = 50
#: Messages embedded as their text alone: the vectors here are looked up by that text.
ALONE = 0


class TableEmbedder:
    """Clustered vectors for texts ``item <i>`` and ``query <i>`` (deterministic)."""

    name = f"clustered:{DIMENSIONS}"
    dimensions = DIMENSIONS

    def __init__(self, items: int = 2000, queries: int = 60) -> None:
        rng = np.random.default_rng(7)
        centres = rng.standard_normal((TOPICS, DIMENSIONS))

        def around(count: int) -> np.ndarray:
            noise = 0.5 * rng.standard_normal((count, DIMENSIONS))
            matrix = (centres[rng.integers(0, TOPICS, count)] + noise).astype(np.float32)
            return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

        self.items, self.queries = around(items), around(queries)

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            kind, number = text.split()
            rows.append((self.items if kind == "item" else self.queries)[int(number)])
        return np.vstack(rows)


def _append(store: ctxbase.Store, texts: list[str], **fields: Any) -> list[Any]:
    chat = store.conversations.create()
    messages = []
    for start in range(0, len(texts), 500):
        batch = [{"role": "user", "content": t, **fields} for t in texts[start : start + 500]]
        messages += store.messages.append_many(chat.id, batch)
    return messages


def _vector_ids(store: ctxbase.Store, query: str, k: int = 10, **options: Any) -> list[Any]:
    hits = store.search(query, kinds=["message"], mode="vector", k=k, threshold=-2, **options)
    return [hit.id for hit in hits.hits]


@pytest.fixture
def clustered(tmp_path: Path) -> Any:
    embedder = TableEmbedder()
    store = ctxbase.open(
        f"sqlite:///{tmp_path / 'v.db'}",
        embedder=embedder,
        sqlite_hnsw_min_vectors=HNSW_FROM,
        embed_message_context=ALONE,
    )
    with store:
        yield store, embedder


def test_hnsw_finds_what_exact_search_finds(clustered: Any) -> None:
    store, embedder = clustered
    messages = _append(store, [f"item {i}" for i in range(len(embedder.items))])
    store.search.prepare_index(embedder.name, DIMENSIONS)
    recalls = []
    for q in range(len(embedder.queries)):
        scores = reference_scores(embedder.items, embedder.queries[q], "cosine")
        truth = {messages[i].id for i in np.argsort(-scores)[:10]}
        hits = store.search(f"query {q}", kinds=["message"], mode="vector", k=10, threshold=-2)
        recalls.append(len({hit.id for hit in hits.hits} & truth) / 10)
        by_id = {m.id: float(s) for m, s in zip(messages, scores, strict=True)}
        for hit in hits.hits:  # candidates come from the index, scores are exact
            assert hit.score == pytest.approx(by_id[hit.id], abs=1e-5)
    assert np.mean(recalls) >= 0.95


def test_filtered_search_still_returns_k(clustered: Any) -> None:
    store, embedder = clustered
    total = len(embedder.items)
    rare = set(range(0, total, 97))  # about 1% of the items pass the filter
    messages = _append(store, [f"item {i}" for i in range(total) if i not in rare])
    chosen = _append(store, [f"item {i}" for i in sorted(rare)], metadata={"team": "ops"})
    store.search.prepare_index(embedder.name, DIMENSIONS)
    assert len(messages) >= HNSW_FROM
    vectors = embedder.items[sorted(rare)]
    for q in range(10):
        scores = reference_scores(vectors, embedder.queries[q], "cosine")
        expected = [chosen[i].id for i in np.argsort(-scores)[:10]]
        found = _vector_ids(store, f"query {q}", filters={"metadata": {"team": "ops"}})
        assert found == expected


def _other_process(url: str, action: str, texts: list[str]) -> None:
    """``append`` texts; ``replace`` deletes the first text's conversation then appends the
    others; ``crash`` dies in the middle of a write transaction."""
    if action == "crash":
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("DELETE FROM embeddings")
        os._exit(3)
    with open_store(url, embed_message_context=ALONE) as store:
        if action == "replace":
            for chat in store.conversations.list(limit=1000).items:
                if store.messages.list(chat.id).items[0].content == texts[0]:
                    store.conversations.delete(chat.id)
            texts = texts[1:]
        _append(store, texts)


def _in_other_process(url: str, action: str, texts: list[str]) -> int | None:
    process = multiprocessing.get_context("spawn").Process(
        target=_other_process, args=(url, action, texts)
    )
    process.start()
    process.join(timeout=120)
    return process.exitcode


def _words(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, 6))


def test_other_processes_writes_are_seen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    rng = np.random.default_rng(3)
    with open_store(url, sqlite_hnsw_min_vectors=HNSW_FROM, embed_message_context=ALONE) as store:
        _append(store, [_words(rng) for _ in range(300)])
        store.search.prepare_index("hash:64", 64)
        new = "espresso grinder calibration"
        assert new not in _contents(store, new)
        assert _in_other_process(url, "append", [new]) == 0
        assert _contents(store, new)[0] == new
        # Deleting the newest row lets SQLite give its rowid to the next insert: the index
        # must notice the row changed although the highest rowid did not.
        other = "tram timetable autumn"
        newest = _newest_rowid(store)
        assert _in_other_process(url, "replace", [new, other]) == 0
        assert _newest_rowid(store) == newest  # the same rowid, another row
        assert _contents(store, other)[0] == other
        assert new not in _contents(store, new)
        assert _in_other_process(url, "crash", []) == 3
        assert _contents(store, other)[0] == other
        assert len(_contents(store, _words(rng))) == 5


def _newest_rowid(store: ctxbase.Store) -> int:
    with store.db.connect() as connection:
        return int(connection.exec_driver_sql("SELECT max(rowid) FROM embeddings").scalar())


def _contents(store: ctxbase.Store, query: str) -> list[str]:
    hits = store.search(query, kinds=["message"], mode="vector", k=5, threshold=-2).hits
    return [hit.item.content for hit in hits]


def test_updates_and_deletions_in_this_process(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    with open_store(
        f"sqlite:///{tmp_path / 'u.db'}",
        sqlite_hnsw_min_vectors=HNSW_FROM,
        embed_message_context=ALONE,
    ) as store:
        _append(store, [_words(rng) for _ in range(200)])
        store.search.prepare_index("hash:64", 64)
        unit = store.contexts.add("plan", "kubernetes upgrade plan")
        updated = store.contexts.update(unit.id, content="lunch menu soup bread")
        hits = store.search("lunch menu soup bread", kinds=["context"], mode="vector").hits
        assert [hit.id for hit in hits] == [updated.id]
        assert store.search("kubernetes upgrade plan", kinds=["context"], mode="vector").hits == []
        store.contexts.delete(updated.id)
        assert store.search("lunch menu soup bread", kinds=["context"], mode="vector").hits == []


def test_index_builds_in_the_background_and_agrees(clustered: Any) -> None:
    store, embedder = clustered
    _append(store, [f"item {i}" for i in range(len(embedder.items))])
    exact = [_vector_ids(store, f"query {q}") for q in range(5)]  # starts the build
    vectors = next(t.vectors for t in _vector_index(store)._tracked.values() if t.vectors)
    for _ in range(600):
        if vectors.ann("cosine") is not None:
            break
        time.sleep(0.1)
    assert vectors.ann("cosine") is not None
    approximate = [_vector_ids(store, f"query {q}") for q in range(5)]
    overlap = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate, exact, strict=True)])
    assert overlap >= 0.9


def test_exact_below_the_threshold(tmp_path: Path) -> None:
    with open_store(
        f"sqlite:///{tmp_path / 'e.db'}", sqlite_hnsw_min_vectors=0, embed_message_context=ALONE
    ) as store:
        _append(store, [" ".join(WORDS[i : i + 5]) for i in range(100)])
        store.search.prepare_index("hash:64", 64)
        tracked = _vector_index(store)._tracked
        assert all(t.vectors is None or t.vectors.ann("cosine") is None for t in tracked.values())
        embedder = HashEmbedder(64)
        texts = [" ".join(WORDS[i : i + 5]) for i in range(100)]
        scores = reference_scores(embedder.embed(texts), embedder.embed([texts[40]])[0], "cosine")
        assert _contents(store, texts[40])[:3] == [texts[i] for i in np.argsort(-scores)[:3]]


def test_threads_search_while_another_writes(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    url = f"sqlite:///{tmp_path / 't.db'}"
    with open_store(url, sqlite_hnsw_min_vectors=HNSW_FROM, embed_message_context=ALONE) as store:
        _append(store, [_words(rng) for _ in range(200)])
        store.search.prepare_index("hash:64", 64)
        failures: list[BaseException] = []
        done = threading.Event()

        def search() -> None:
            try:
                while not done.is_set():
                    hits = store.search(_words(rng), kinds=["message"], mode="vector", k=5)
                    assert all(hit.kind == "message" for hit in hits.hits)
            except BaseException as error:  # reported below
                failures.append(error)

        threads = [threading.Thread(target=search) for _ in range(3)]
        for thread in threads:
            thread.start()
        chats = [store.conversations.create() for _ in range(20)]
        for i, chat in enumerate(chats):
            store.messages.append(chat.id, role="user", content=f"marker{i} tram timetable")
            if i % 2:
                store.conversations.delete(chats[i - 1].id)
        done.set()
        for thread in threads:
            thread.join()
        assert failures == []
        found = _contents(store, "tram timetable")
        assert found and all(int(text.split()[0][6:]) % 2 for text in found)


def _vector_index(store: ctxbase.Store) -> SQLiteVectorIndex:
    backend = store.db.backend
    assert isinstance(backend, SQLiteBackend)
    return backend.vector_index


# --- exact search's product ------------------------------------------------------------------

#: Operations numpy was given a :class:`NotingMatrix` for: (name, keyword arguments).
NOTED: list[tuple[str, dict[str, Any]]] = []


class NotingMatrix(np.ndarray):
    """A view of a matrix that notes each numpy function and ufunc it is handed to."""

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        NOTED.append((func.__name__, dict(kwargs)))
        return super().__array_function__(func, types, args, kwargs)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        NOTED.append((ufunc.__name__, dict(kwargs)))
        plain = [np.asarray(i) if isinstance(i, NotingMatrix) else i for i in inputs]
        return getattr(ufunc, method)(*plain, **kwargs)


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-novector"])
def test_exact_search_multiplies_on_the_searching_thread(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: Any
) -> None:
    """The product of every stored vector with the query is numpy's own einsum loop, on
    the thread that searches: never BLAS, which splits a large product over every core
    and stalls concurrent searches (see ctxbase.db.vectors.blas). Both exact searches:
    SQLite's in-memory vectors, and PostgreSQL's without pgvector."""
    rows, dimensions = 200, 384  # 76,800 elements: BLAS would split it over threads
    products: list[tuple[int, tuple[int, ...], list[tuple[str, dict[str, Any]]]]] = []

    def noting(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
        NOTED.clear()
        result = blas.matrix_times_vector(matrix.view(NotingMatrix), vector)
        products.append((threading.get_ident(), matrix.shape, list(NOTED)))
        return np.asarray(result)

    monkeypatch.setattr(memory, "matrix_times_vector", noting)  # SQLite's vector sets
    monkeypatch.setattr(base, "matrix_times_vector", noting)  # reference_scores
    opened = contextmanager(store_on)(
        backend,
        tmp_path,
        request,
        embedder=f"hash:{dimensions}",
        sqlite_hnsw_min_vectors=10 * rows,  # exact, never the HNSW index
        embed_message_context=ALONE,
    )
    with opened as store:
        texts = [f"note {i} on {WORDS[i % 37]} and {WORDS[i % 11]}" for i in range(rows)]
        _append(store, texts)
        products.clear()
        assert len(_contents(store, f"{WORDS[3]} {WORDS[5]}")) == 5
    full = [(thread, noted) for thread, shape, noted in products if shape == (rows, dimensions)]
    assert full, f"no product of every stored vector went through blas: {products}"
    for thread, noted in full:
        assert thread == threading.get_ident()
        assert len(noted) == 1 and noted[0][0] == "einsum", noted
        assert not noted[0][1].get("optimize"), noted  # optimize hands the product to BLAS
