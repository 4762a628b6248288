"""Vector scores, defined once: every backend must agree with these numpy references."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from ctxbase.db.vectors.blas import matrix_times_vector

if TYPE_CHECKING:
    from sqlalchemy import Table

    from ctxbase.db.database import Database
    from ctxbase.store.search_conditions import ItemConditions

Distance = Literal["cosine", "l2", "ip"]
DISTANCES: tuple[Distance, ...] = ("cosine", "l2", "ip")


class VectorMatch(NamedTuple):
    """One item a vector search found: every backend returns these, best first."""

    item_id: Any  # the item's id (uuid.UUID)
    score: float  # higher is better, as :func:`reference_scores` defines it
    item: dict[str, Any]  # the item's row, column name to value


#: A vector search, as every backend has one: ``(db, conditions, items, owner, model, query,
#: distance, limit)`` to the ``limit`` matches nearest ``query``, best first.
VectorSearch = Callable[
    ["Database", "ItemConditions", "Table", Any, str, np.ndarray, Distance, int],
    list[VectorMatch],
]


def reference_scores(matrix: np.ndarray, query: np.ndarray, distance: Distance) -> np.ndarray:
    """Higher is better. cosine: cosine similarity; l2: 1 / (1 + Euclidean distance);
    ip: inner product. Computed in float64."""
    m = np.asarray(matrix, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if distance == "cosine":
        norms = np.linalg.norm(m, axis=1) * np.linalg.norm(q)
        return matrix_times_vector(m, q) / np.maximum(norms, 1e-12)
    if distance == "l2":
        return 1.0 / (1.0 + np.linalg.norm(m - q, axis=1))
    return matrix_times_vector(m, q)


def score_from_pgvector(distance: Distance, value: float) -> float:
    """pgvector's operator result as the score above (``<=>``, ``<->``, ``<#>``)."""
    if distance == "cosine":
        return 1.0 - value
    if distance == "l2":
        return 1.0 / (1.0 + value)
    return -value  # <#> is the negative inner product
