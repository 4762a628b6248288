"""SQLite vector search: each model's vectors held in memory, kept in step with the table.

Reading every vector from the file for each query is slow past a few thousand items; this
index loads a (model, kind)'s vectors once and keeps them in step with the table, whichever
process writes it, before every search:

- rows added since are found by rowid (above the highest rowid seen);
- any deletion (counted by a trigger, cascades included, see revision 0005) makes the
  next search compare the table's (rowid, embedding id) pairs with those in memory and
  drop the rows that went (a rowid reused by a new row has a new embedding id);
- the state is read in the same read transaction as the candidates' rows, so a search
  never returns a deleted item nor misses one committed before it began;
- a highest rowid lower than seen without any deletion means VACUUM renumbered the rows
  (it may, in a table without an INTEGER PRIMARY KEY): the same comparison follows.

Scores are exact. Collections of at least ``hnsw_min_vectors`` vectors also get an HNSW
index (usearch) that proposes candidates, built in the background (searches stay exact
until it is ready) or at once by :meth:`SQLiteVectorIndex.build`. Item conditions
(project, filters) are checked in SQL on the best candidates, widening while too few
pass; past a thousand candidates the widening continues exactly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import String, Table, bindparam, func, literal_column, select

from ctxbase.db.vectors.ann import AnnOptions
from ctxbase.db.vectors.base import Distance, VectorMatch
from ctxbase.db.vectors.memory import Snapshot, VectorSet

if TYPE_CHECKING:
    from ctxbase.db.database import Database
    from ctxbase.store.search_conditions import ItemConditions

_MAX_WIDENINGS = 6
_ANN_MAX_FETCH = 1000  # wider than this, scoring every vector is as fast and exact
_STATE = (
    "SELECT (SELECT value FROM store_settings WHERE key = 'embedding.deletions'),"
    " (SELECT coalesce(max(rowid), 0) FROM embeddings)"
)
_NEVER = object()


@dataclass(frozen=True)
class SQLiteVectorOptions:
    """``hnsw_min_vectors``: collections this large get an HNSW index (0: never)."""

    hnsw_min_vectors: int = 20_000
    ann: AnnOptions = field(default_factory=AnnOptions)


@dataclass
class _Tracked:
    """One (model, owner)'s vectors and the table state they reflect."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    deletions: Any = _NEVER
    max_rowid: int = 0
    vectors: VectorSet | None = None


class SQLiteVectorIndex:
    """In-memory vectors per (model, owner column) for one database."""

    def __init__(self, options: SQLiteVectorOptions | None = None) -> None:
        self.options = options or SQLiteVectorOptions()
        self._tracked: dict[tuple[str, str], _Tracked] = {}
        self._lock = threading.Lock()
        self._analyzed = False

    def prepare(self, db: Database) -> None:
        """Gather table statistics once per process (in a write transaction of its own).

        Without them SQLite's planner may check candidate ids through the project index,
        scanning the whole project, instead of looking each id up by primary key."""
        if self._analyzed:
            return
        with db.connect(write=True) as connection:
            connection.exec_driver_sql("ANALYZE")
        self._analyzed = True

    def build(self, db: Database, model: str, owners: list[str], distance: Distance) -> None:
        """Load the model's vectors and build the HNSW index of each large collection now."""
        for owner in owners:
            with db.raw() as cursor, _read_snapshot(cursor):
                vectors = self._refreshed(cursor, model, owner)
            if vectors is not None and self._wants_ann(vectors):
                with vectors.lock:
                    build = vectors.build_ann(distance, self.options.ann, background=False)
                if build is not None:
                    build()

    def search(
        self,
        db: Database,
        conditions: ItemConditions,
        items: Table,
        owner: Any,
        model: str,
        query: np.ndarray,
        distance: Distance,
        limit: int,
    ) -> list[VectorMatch]:
        """The nearest items meeting the conditions, best first."""
        check = db.prepared(
            f"search.sqlite:{conditions.shape}", lambda: _candidate_rows(items, conditions)
        )
        with db.raw() as cursor, _read_snapshot(cursor):
            vectors = self._refreshed(cursor, model, owner.name)
            if vectors is None or vectors.count == 0:
                return []
            if self._wants_ann(vectors):
                with vectors.lock:
                    vectors.build_ann(distance, self.options.ann, background=True)
            exact: np.ndarray | None = None
            fetch = limit
            for _ in range(_MAX_WIDENINGS):
                snapshot, order, scores = self._best(vectors, query, distance, fetch, exact)
                if scores is not None:
                    exact = scores
                candidates = [snapshot.item_ids[i] for i in order]
                params = {**conditions.params, "candidates": json.dumps(candidates)}
                rows = {row["id"].hex: row for row in check.rows(cursor, params)}
                kept = [
                    (i, rows[snapshot.item_ids[i]]) for i in order if snapshot.item_ids[i] in rows
                ]
                if len(kept) >= limit or fetch >= snapshot.count:
                    break
                fetch *= 8
        best = snapshot.scores_at(np.asarray([i for i, _ in kept], dtype=np.int64), query, distance)
        found = [
            VectorMatch(row["id"], float(score), row)
            for (_, row), score in zip(kept, best, strict=True)
        ]
        found.sort(key=lambda match: -match.score)
        return found[:limit]

    def _wants_ann(self, vectors: VectorSet) -> bool:
        minimum = self.options.hnsw_min_vectors
        return minimum > 0 and vectors.count >= minimum

    def _best(
        self,
        vectors: VectorSet,
        query: np.ndarray,
        distance: Distance,
        fetch: int,
        exact: np.ndarray | None,
    ) -> tuple[Snapshot, np.ndarray, np.ndarray | None]:
        """Positions of about the ``fetch`` best rows, best first, in a snapshot; and
        every row's exact score when they were computed."""
        with vectors.lock:
            snapshot = vectors.snapshot()
            # asking the index for every row would be slower than exact, and less sure
            wanted = fetch <= _ANN_MAX_FETCH and fetch < snapshot.count
            index = vectors.ann(distance) if wanted else None
            if index is not None and exact is None:
                positions = snapshot.positions(index.search(query, fetch))
                order = np.argsort(-snapshot.scores_at(positions, query, distance), kind="stable")
                return snapshot, positions[order], None
        scores = exact if exact is not None and len(exact) == snapshot.count else None
        if scores is None:
            scores = snapshot.scores(query, distance)
        return snapshot, _best(scores, fetch), scores

    # --- keeping in step with the table ---

    def _refreshed(self, cursor: Any, model: str, owner: str) -> VectorSet | None:
        """The (model, owner)'s vectors as of the cursor's read transaction, which must
        not have read anything yet: its snapshot starts with the state read here, under
        the lock, so the vectors shared by threads only ever move forward in time."""
        with self._lock:
            tracked = self._tracked.setdefault((model, owner), _Tracked())
        with tracked.lock:
            deletions, max_rowid = cursor.execute(_STATE).fetchone()
            # a lower highest rowid without a deletion: VACUUM renumbered the rows
            if tracked.deletions != deletions or max_rowid < tracked.max_rowid:
                _reconcile(cursor, tracked, model, owner)
            elif max_rowid > tracked.max_rowid:
                _append(tracked, _rows_after(cursor, model, owner, tracked.max_rowid))
            tracked.deletions, tracked.max_rowid = deletions, max_rowid
        return tracked.vectors


def _reconcile(cursor: Any, tracked: _Tracked, model: str, owner: str) -> None:
    """Drop the rows gone from the table and load the ones not in memory."""
    vectors = tracked.vectors
    if vectors is None or vectors.count == 0:
        _append(tracked, _rows_after(cursor, model, owner, 0))
        return
    present = dict(
        cursor.execute(
            f"SELECT rowid, id FROM embeddings WHERE model = ? AND {owner} IS NOT NULL", (model,)
        ).fetchall()
    )
    with vectors.lock:
        mask = np.fromiter(
            (
                present.get(r) == e
                for r, e in zip(vectors.rowids.tolist(), vectors.embedding_ids, strict=True)
            ),
            dtype=bool,
            count=vectors.count,
        )
        if not mask.all():
            vectors.keep(mask)
        known = set(vectors.rowids.tolist())
    missing = sorted(rowid for rowid in present if rowid not in known)
    if missing:
        rows = cursor.execute(
            f"SELECT rowid, id, {owner}, vector FROM embeddings"
            " WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY rowid",
            (json.dumps(missing),),
        ).fetchall()
        _append(tracked, rows)


def _rows_after(cursor: Any, model: str, owner: str, rowid: int) -> list[Any]:
    return cursor.execute(
        f"SELECT rowid, id, {owner}, vector FROM embeddings"
        f" WHERE model = ? AND {owner} IS NOT NULL AND rowid > ? ORDER BY rowid",
        (model, rowid),
    ).fetchall()


def _append(tracked: _Tracked, rows: list[Any]) -> None:
    """Add (rowid, embedding id, item id, vector bytes) rows."""
    if not rows:
        return
    dimensions = len(rows[0][3]) // 4
    if tracked.vectors is None:
        tracked.vectors = VectorSet(dimensions)
    matrix = np.frombuffer(b"".join(row[3] for row in rows), dtype="<f4").reshape(-1, dimensions)
    with tracked.vectors.lock:
        tracked.vectors.append(
            [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows], matrix
        )


def _candidate_rows(items: Table, conditions: ItemConditions) -> Any:
    """The rows, among ``:candidates`` (a JSON array of ids), that meet the conditions:
    one statement whatever the number of candidates."""
    candidates: Any = select(literal_column("value")).select_from(
        func.json_each(bindparam("candidates", type_=String()))
    )
    return select(items).where(items.c.id.in_(candidates), *conditions.clauses)


@contextmanager
def _read_snapshot(cursor: Any) -> Iterator[None]:
    """One read transaction: every statement in the block sees the same data."""
    cursor.execute("BEGIN")
    try:
        yield
    except BaseException:
        if cursor.connection.in_transaction:
            cursor.execute("ROLLBACK")
        raise
    cursor.execute("COMMIT")


def _best(scores: np.ndarray, count: int) -> np.ndarray:
    """Indexes of the ``count`` highest scores, best first."""
    if count >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, count)[:count]
    return top[np.argsort(-scores[top], kind="stable")]
