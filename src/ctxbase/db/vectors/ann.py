"""An approximate nearest-neighbour (HNSW) index over vectors held in memory, with usearch.

It only proposes candidates: callers score them exactly from their own float32 copy, so
the index stores half-precision vectors (half the memory, the same candidates in
practice). Vectors are known by *labels*, integers that callers never reuse.

Building takes seconds for a large collection (about 20 s for 100k x 384 on two cores),
so it may run in a background thread over a snapshot of the vectors while searches stay
exact; :meth:`AnnIndex.catch_up` then applies what changed since the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from usearch.index import Index

from ctxbase.db.vectors.base import Distance

_METRICS = {"cosine": "cos", "l2": "l2sq", "ip": "ip"}


@dataclass(frozen=True)
class AnnOptions:
    """HNSW parameters: links per node, build effort, search effort."""

    connectivity: int = 16
    expansion_add: int = 64
    expansion_search: int = 100


class AnnIndex:
    """One HNSW graph for one distance. Not thread-safe: callers serialise every call."""

    def __init__(self, dimensions: int, distance: Distance, options: AnnOptions) -> None:
        self._index = Index(
            ndim=dimensions,
            metric=_METRICS[distance],
            dtype="f16",
            connectivity=options.connectivity,
            expansion_add=options.expansion_add,
            expansion_search=options.expansion_search,
        )
        self.covered_up_to = -1  # the highest label the index has seen

    def __len__(self) -> int:
        return len(self._index)

    def add(self, labels: np.ndarray, vectors: np.ndarray, *, threads: int = 1) -> None:
        if len(labels):
            self._index.add(labels.astype(np.uint64), vectors, threads=threads)
            self.covered_up_to = max(self.covered_up_to, int(labels[-1]))

    def remove(self, labels: np.ndarray) -> None:
        if len(labels):
            self._index.remove(labels.astype(np.uint64))

    def catch_up(self, snapshot: np.ndarray, labels: np.ndarray, vectors: np.ndarray) -> None:
        """After building from ``snapshot`` labels: drop those gone from ``labels`` (the
        current ones, ascending) and add the current ones newer than the snapshot."""
        self.remove(np.setdiff1d(snapshot, labels, assume_unique=True))
        newer = np.searchsorted(labels, self.covered_up_to, side="right")
        self.add(labels[newer:], vectors[newer:])

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Labels of about the ``count`` nearest vectors, nearest first."""
        found = self._index.search(query, count, threads=1)
        return np.asarray(found.keys[: len(found)], dtype=np.int64)
