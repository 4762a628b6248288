"""The vectors of one (model, kind) held in memory: exact scores, and an HNSW index once
the collection is large.

Rows are appended in place into buffers with spare room, so a search that read the first
``n`` rows is never disturbed by rows added after it; removing rows builds new buffers.
Each row carries its table's rowid and embedding id (to notice deletions), the item's id
(hex, as SQLite stores it) and a label for the HNSW index.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ctxbase.db.vectors.ann import AnnIndex, AnnOptions
from ctxbase.db.vectors.base import Distance
from ctxbase.db.vectors.blas import matrix_times_vector


@dataclass(frozen=True)
class Snapshot:
    """The first ``count`` rows of a :class:`VectorSet` at one moment (safe to read
    without the set's lock)."""

    count: int
    matrix: np.ndarray
    norms: np.ndarray
    labels: np.ndarray
    item_ids: list[str]

    def scores(self, query: np.ndarray, distance: Distance) -> np.ndarray:
        return scores(self.matrix, self.norms, query, distance)

    def scores_at(self, positions: np.ndarray, query: np.ndarray, distance: Distance) -> np.ndarray:
        return scores(self.matrix[positions], self.norms[positions], query, distance)

    def positions(self, labels: np.ndarray) -> np.ndarray:
        """Where rows with these labels are (every label must be present)."""
        return np.searchsorted(self.labels, labels)


def scores(
    matrix: np.ndarray, norms: np.ndarray, query: np.ndarray, distance: Distance
) -> np.ndarray:
    """:func:`reference_scores` in float32 with cached norms (same values within 1e-6)."""
    q = np.asarray(query, dtype=np.float32)
    dots = matrix_times_vector(matrix, q)
    if distance == "cosine":
        return dots / np.maximum(norms * float(np.linalg.norm(q)), 1e-12)
    if distance == "l2":
        squared = np.maximum(norms**2 - 2 * dots + float(q @ q), 0.0)
        return 1.0 / (1.0 + np.sqrt(squared))
    return dots


class VectorSet:
    """Rows of vectors, kept in rowid order of arrival; callers hold :attr:`lock` while
    changing it or using its HNSW indexes."""

    def __init__(self, dimensions: int) -> None:
        self.lock = threading.RLock()
        self.dimensions = dimensions
        self.count = 0
        self._matrix = np.empty((0, dimensions), dtype=np.float32)
        self._norms = np.empty(0, dtype=np.float32)
        self._labels = np.empty(0, dtype=np.int64)
        self.rowids = np.empty(0, dtype=np.int64)
        self.embedding_ids: list[str] = []
        self.item_ids: list[str] = []
        self._next_label = 0
        self._ann: dict[Distance, AnnIndex] = {}
        self._building: set[Distance] = set()

    def snapshot(self) -> Snapshot:
        n = self.count
        return Snapshot(n, self._matrix[:n], self._norms[:n], self._labels[:n], self.item_ids)

    # --- changes ---

    def append(
        self, rowids: list[int], embedding_ids: list[str], item_ids: list[str], matrix: np.ndarray
    ) -> None:
        n, added = self.count, len(rowids)
        if not added:
            return
        if n + added > len(self._matrix):
            self._grow(n + added)
        labels = np.arange(self._next_label, self._next_label + added, dtype=np.int64)
        self._next_label += added
        self._matrix[n : n + added] = matrix
        self._norms[n : n + added] = np.linalg.norm(matrix, axis=1)
        self._labels[n : n + added] = labels
        self.rowids = np.concatenate([self.rowids, np.asarray(rowids, dtype=np.int64)])
        self.embedding_ids.extend(embedding_ids)
        self.item_ids.extend(item_ids)
        self.count = n + added
        for index in self._ann.values():
            index.add(labels, matrix)

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where ``mask`` is true (new buffers: readers keep theirs)."""
        n = self.count
        gone = self._labels[:n][~mask]
        for index in self._ann.values():
            index.remove(gone)
        self._matrix = self._matrix[:n][mask].copy()
        self._norms = self._norms[:n][mask].copy()
        self._labels = self._labels[:n][mask].copy()
        self.rowids = self.rowids[mask]
        self.embedding_ids = [e for e, kept in zip(self.embedding_ids, mask, strict=True) if kept]
        self.item_ids = [i for i, kept in zip(self.item_ids, mask, strict=True) if kept]
        self.count = len(self._labels)

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * len(self._matrix), 1024)
        n = self.count
        matrix = np.empty((capacity, self.dimensions), dtype=np.float32)
        norms = np.empty(capacity, dtype=np.float32)
        labels = np.empty(capacity, dtype=np.int64)
        matrix[:n], norms[:n], labels[:n] = self._matrix[:n], self._norms[:n], self._labels[:n]
        self._matrix, self._norms, self._labels = matrix, norms, labels

    # --- the HNSW index ---

    def ann(self, distance: Distance) -> AnnIndex | None:
        """The distance's HNSW index, if built."""
        return self._ann.get(distance)

    def build_ann(
        self, distance: Distance, options: AnnOptions, *, background: bool
    ) -> Callable[[], None] | None:
        """Start building the distance's HNSW index (call with the lock held).

        In the background the build reads a snapshot without the lock, then catches up
        under it; otherwise it returns the build to run now, without the lock."""
        if distance in self._ann or distance in self._building:
            return None
        self._building.add(distance)
        snapshot = self.snapshot()

        def build() -> None:
            index = AnnIndex(self.dimensions, distance, options)
            try:
                index.add(snapshot.labels, snapshot.matrix, threads=1 if background else 0)
                with self.lock:
                    current = self.snapshot()
                    index.catch_up(snapshot.labels, current.labels, current.matrix)
                    self._ann[distance] = index
            finally:
                with self.lock:
                    self._building.discard(distance)

        if not background:
            return build
        threading.Thread(target=build, name="ctxbase-hnsw-build", daemon=True).start()
        return None
