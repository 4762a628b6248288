"""Vector search with pgvector: one HNSW (or IVFFlat) index per model and distance.

Embeddings of every model share one ``vector`` column without a fixed dimension; each
index is a partial expression index, ``(vector::vector(D)) WHERE model = 'M'``, so several
models and dimensions coexist. Queries repeat that expression and predicate literally so
the planner matches the index even for prepared statements. Every session runs with
iterative index scans (set at connect), so a selective filter or a ``limit`` above
``ef_search`` still gets ``limit`` rows without changing the session's settings.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import Connection, Float, Table, bindparam, cast, func, literal_column, select

from ctxbase.db.migrate import ANN_INDEX_PREFIX
from ctxbase.db.vectors.base import Distance, score_from_pgvector

_MAX_FETCH = 40_000
_OPERATORS = {"cosine": "<=>", "l2": "<->", "ip": "<#>"}
_OPCLASSES = {"cosine": "vector_cosine_ops", "l2": "vector_l2_ops", "ip": "vector_ip_ops"}


@dataclass(frozen=True)
class IndexOptions:
    """How an index is built; search effort (ef_search, probes) is set per session."""

    kind: str = "hnsw"  # or "ivfflat"
    m: int = 16
    ef_construction: int = 64
    lists: int = 100


_built: set[tuple[str, str, int, str]] = set()
_lock = threading.Lock()


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def index_name(model: str, dimensions: int, distance: str, kind: str) -> str:
    digest = hashlib.sha1(f"{model}|{dimensions}|{distance}|{kind}".encode()).hexdigest()[:12]
    return f"{ANN_INDEX_PREFIX}{digest}"


def is_built(database: str, model: str, dimensions: int, distance: str, kind: str) -> bool:
    return (database, model, dimensions, f"{distance}/{kind}") in _built


def ensure_index(
    connection: Connection,
    database: str,
    model: str,
    dimensions: int,
    distance: Distance,
    options: IndexOptions,
) -> None:
    """Create the model's index if missing (once per process and database)."""
    key = (database, model, dimensions, f"{distance}/{options.kind}")
    if key in _built:
        return
    with _lock:
        name = index_name(model, dimensions, distance, options.kind)
        params = (
            f"m = {int(options.m)}, ef_construction = {int(options.ef_construction)}"
            if options.kind == "hnsw"
            else f"lists = {int(options.lists)}"
        )
        # Building in memory is several times faster than spilling to disk.
        connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {name} ON embeddings USING {options.kind} "
            f"((vector::vector({int(dimensions)})) {_OPCLASSES[distance]}) "
            f"WITH ({params}) WHERE model = {_quote(model)}"
        )
        # Fresh statistics, or the planner may think a filter leaves one row and skip the
        # index (autovacuum would catch up, later).
        connection.exec_driver_sql("ANALYZE embeddings, messages, context_units, memories")
        _built.add(key)


def search(
    connection: Connection,
    embeddings: Table,
    items: Table,
    owner: Any,
    conditions: list[Any],
    model: str,
    query: np.ndarray,
    distance: Distance,
    limit: int,
    project_id: Any,
) -> list[tuple[uuid.UUID, float, dict[str, Any]]]:
    """(item id, score, item row) of the nearest items meeting ``conditions``."""
    dimensions = int(query.shape[0])
    vector_type = VECTOR(dimensions)
    wanted = cast(bindparam("query_vector", query.tolist(), type_=vector_type), vector_type)
    measured = literal_column(f"(embeddings.vector::vector({dimensions}))").op(
        _OPERATORS[distance], return_type=Float()
    )(wanted)
    # The nearest vectors come from the index alone (a join in the same query makes the
    # planner sort every row instead); the item conditions are checked on those, and the
    # search widens while too few pass.
    fetch = limit
    while True:
        nearest = (
            select(owner.label("item_id"), measured.label("distance"))
            .where(
                literal_column(f"embeddings.model = {_quote(model)}"),
                owner.isnot(None),
                embeddings.c.project_id == project_id,
            )
            .order_by(measured)
            .limit(fetch)
            .cte("nearest")
        )
        statement = (
            select(nearest.c.distance, *items.c)
            .select_from(nearest.join(items, nearest.c.item_id == items.c.id))
            .where(*conditions)
            .order_by(nearest.c.distance)
            .limit(limit)
        )
        rows = connection.execute(statement).fetchall()
        if len(rows) >= limit or fetch >= _MAX_FETCH or _exhausted(connection, nearest, fetch):
            break
        fetch *= 4
    # Iterative scans may return rows slightly out of order: sort exactly.
    scored = []
    for row in rows:
        item = dict(row._mapping)
        measured_distance = item.pop("distance")
        scored.append((item["id"], score_from_pgvector(distance, float(measured_distance)), item))
    return sorted(scored, key=lambda entry: -entry[1])


def _exhausted(connection: Connection, nearest: Any, fetch: int) -> bool:
    """Whether the index had fewer than ``fetch`` vectors to give (no point widening)."""
    count = connection.execute(select(func.count()).select_from(nearest)).scalar() or 0
    return count < fetch
