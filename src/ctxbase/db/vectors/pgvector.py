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
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import (
    Connection,
    Float,
    Table,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)

from ctxbase.db.migrate import ANN_INDEX_PREFIX
from ctxbase.db.vectors.base import Distance, VectorMatch, score_from_pgvector
from ctxbase.db.vectors.wire import BinaryVECTOR

if TYPE_CHECKING:
    from ctxbase.db.database import Database
    from ctxbase.store.search_conditions import ItemConditions

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


@dataclass(frozen=True)
class _Query:
    """What a vector statement is made of, besides parameter values."""

    items: Table
    owner: Any
    model: str
    dimensions: int
    distance: Distance

    def name(self, *parts: Any) -> str:
        return (
            f"search.pgvector:{self.owner.name}:{self.model}:{self.dimensions}:{self.distance}:"
            + ":".join(map(str, parts))
        )


def search(
    db: Database,
    conditions: ItemConditions,
    items: Table,
    owner: Any,
    model: str,
    query: np.ndarray,
    distance: Distance,
    limit: int,
) -> list[VectorMatch]:
    """The nearest items meeting ``conditions``, best first.

    Prepared statements, one per shape of conditions and pair of limits, run on a driver
    cursor in autocommit. Limits are written into the SQL: with a parameter in their
    place PostgreSQL would plan each execution again (the plan's cost depends on them),
    where a literal lets it reuse one plan; a search's limits take a few values only.
    """
    spec = _Query(items, owner, model, int(query.shape[0]), distance)
    params = {**conditions.params, "query_vector": query}
    fetch = limit
    with db.raw() as cursor:
        while True:
            statement = db.prepared(
                spec.name(conditions.shape, fetch, limit),
                partial(_nearest_items, spec, conditions, fetch, limit),
            )
            rows = statement.rows(cursor, params)
            if (
                len(rows) >= limit
                or fetch >= _MAX_FETCH
                or _exhausted(db, cursor, spec, conditions, params, fetch)
            ):
                break
            fetch *= 4
    # Iterative scans may return rows slightly out of order: sort exactly.
    scored = []
    for item in rows:
        measured = item.pop("distance")
        scored.append(VectorMatch(item["id"], score_from_pgvector(distance, float(measured)), item))
    return sorted(scored, key=lambda match: -match.score)


def _exhausted(
    db: Database,
    cursor: Any,
    spec: _Query,
    conditions: ItemConditions,
    params: dict[str, Any],
    fetch: int,
) -> bool:
    """Whether the index had fewer than ``fetch`` vectors to give (no point widening)."""
    statement = db.prepared(
        spec.name("available", fetch), lambda: _available(spec, conditions.project_id, fetch)
    )
    counted = statement.first(cursor, params)
    return counted is None or counted["available"] < fetch


def _nearest(spec: _Query, project_id: Any, fetch: int) -> Any:
    """The ``fetch`` vectors of the project nearest ``:query_vector``, from the index alone
    (a join in the same query makes the planner sort every row instead)."""
    vector_type = VECTOR(spec.dimensions)
    wanted = cast(bindparam("query_vector", type_=BinaryVECTOR(spec.dimensions)), vector_type)
    measured = literal_column(f"(embeddings.vector::vector({spec.dimensions}))").op(
        _OPERATORS[spec.distance], return_type=Float()
    )(wanted)
    embeddings = spec.owner.table
    return (
        select(spec.owner.label("item_id"), measured.label("distance"))
        .where(
            literal_column(f"embeddings.model = {_quote(spec.model)}"),
            spec.owner.isnot(None),
            embeddings.c.project_id == project_id,
        )
        .order_by(measured)
        .limit(literal_column(str(int(fetch))))
        .cte("nearest")
    )


def _nearest_items(spec: _Query, conditions: ItemConditions, fetch: int, limit: int) -> Any:
    """The items of the nearest vectors that meet the conditions, nearest first."""
    nearest = _nearest(spec, conditions.project_id, fetch)
    items = spec.items
    return (
        select(nearest.c.distance, *items.c)
        .select_from(nearest.join(items, nearest.c.item_id == items.c.id))
        .where(*conditions.clauses)
        .order_by(nearest.c.distance)
        .limit(literal_column(str(int(limit))))
    )


def _available(spec: _Query, project_id: Any, fetch: int) -> Any:
    """How many of the ``fetch`` vectors asked for the index had to give."""
    nearest = _nearest(spec, project_id, fetch)
    return select(func.count().label("available")).select_from(nearest)
