"""SQLite vector search: each model's vectors held in memory, kept in step with the table.

Reading every vector from the file for each query is slow past a few thousand items; this
index loads a (model, kind)'s vectors once, appends rows added since (found by rowid) and
reloads after any deletion (counted by a trigger, see revision 0005), so a search never
sees a deleted item nor misses a new one, whichever process wrote them. Scores are exact;
item conditions (project, filters) are checked in SQL on the best candidates, widening
while too few pass.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, select, text

from ctxbase.db.vectors.base import Distance

_MAX_WIDENINGS = 6


@dataclass
class _Vectors:
    deletions: Any = None
    max_rowid: int = 0
    ids: list[uuid.UUID] = field(default_factory=list)
    chunks: list[np.ndarray] = field(default_factory=list)
    matrix: np.ndarray | None = None
    norms: np.ndarray | None = None

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """The vectors as one float32 matrix, and their norms (computed once per change)."""
        if self.matrix is None:
            self.matrix = np.vstack(self.chunks)
            self.chunks = [self.matrix]
            self.norms = np.linalg.norm(self.matrix, axis=1)
        assert self.norms is not None
        return self.matrix, self.norms


def _scores(
    matrix: np.ndarray, norms: np.ndarray, query: np.ndarray, distance: Distance
) -> np.ndarray:
    """:func:`reference_scores` in float32 with cached norms (same values within 1e-6)."""
    q = np.asarray(query, dtype=np.float32)
    dots = matrix @ q
    if distance == "cosine":
        return dots / np.maximum(norms * float(np.linalg.norm(q)), 1e-12)
    if distance == "l2":
        squared = np.maximum(norms**2 - 2 * dots + float(q @ q), 0.0)
        return 1.0 / (1.0 + np.sqrt(squared))
    return dots


class SQLiteVectorIndex:
    """In-memory vectors per (model, owner column) for one database."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], _Vectors] = {}
        self._lock = threading.Lock()
        self._analyzed = False

    def prepare(self, db: Any) -> None:
        """Gather table statistics once per process (in a write transaction of its own).

        Without them SQLite's planner may check candidate ids through the project index,
        scanning the whole project, instead of looking each id up by primary key."""
        if self._analyzed:
            return
        with db.connect(write=True) as connection:
            connection.exec_driver_sql("ANALYZE")
        self._analyzed = True

    def search(
        self,
        connection: Connection,
        embeddings: Table,
        items: Table,
        owner: Any,
        conditions: list[Any],
        model: str,
        query: np.ndarray,
        distance: Distance,
        limit: int,
    ) -> list[tuple[uuid.UUID, float]]:
        with self._lock:
            vectors = self._refresh(connection, model, owner.name)
            if not vectors.ids:
                return []
            (matrix, norms), ids = vectors.stacked(), vectors.ids
        scores = _scores(matrix, norms, query, distance)
        fetch = limit
        for _ in range(_MAX_WIDENINGS):
            order = _best(scores, fetch)
            candidates = [ids[i] for i in order]
            allowed = set(
                connection.execute(
                    select(items.c.id).where(items.c.id.in_(candidates), *conditions)
                ).scalars()
            )
            kept = [(ids[i], float(scores[i])) for i in order if ids[i] in allowed]
            if len(kept) >= limit or fetch >= len(ids):
                return kept[:limit]
            fetch *= 8
        return kept[:limit]

    def _refresh(self, connection: Connection, model: str, owner: str) -> _Vectors:
        deletions, max_rowid = connection.execute(
            text(
                "SELECT (SELECT value FROM store_settings WHERE key = 'embedding.deletions'),"
                " (SELECT coalesce(max(rowid), 0) FROM embeddings)"
            )
        ).one()
        key = (model, owner)
        vectors = self._vectors.get(key)
        if vectors is None or vectors.deletions != deletions:
            vectors = self._vectors[key] = _Vectors(deletions=deletions)
        if max_rowid > vectors.max_rowid:
            rows = connection.execute(
                text(
                    f"SELECT rowid, {owner}, vector FROM embeddings WHERE model = :model"
                    f" AND {owner} IS NOT NULL AND rowid > :after ORDER BY rowid"
                ),
                {"model": model, "after": vectors.max_rowid},
            ).fetchall()
            if rows:
                vectors.ids.extend(uuid.UUID(hex=row[1]) for row in rows)
                vectors.chunks.append(
                    np.vstack([np.frombuffer(row[2], dtype="<f4") for row in rows])
                )
                vectors.matrix = None
            vectors.max_rowid = max_rowid
        return vectors


def _best(scores: np.ndarray, count: int) -> np.ndarray:
    """Indexes of the ``count`` highest scores, best first."""
    if count >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, count)[:count]
    return top[np.argsort(-scores[top], kind="stable")]
