"""Exact vector search with numpy, for PostgreSQL without pgvector.

Reads the candidate vectors (one model, filtered in SQL) and scores them all, then reads
the rows of the best. Exact by construction; cost grows with the number of candidates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Table, select

from ctxbase.db.schema import Embedding, table
from ctxbase.db.vectors.base import Distance, VectorMatch, reference_scores

if TYPE_CHECKING:
    from ctxbase.db.database import Database
    from ctxbase.store.search_conditions import ItemConditions

embeddings_table = table(Embedding)


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
    """The ``limit`` items nearest ``query`` meeting ``conditions``, best first."""
    embeddings = embeddings_table
    statement = (
        select(owner, embeddings.c.vector)
        .select_from(embeddings.join(items, owner == items.c.id))
        .where(embeddings.c.model == model, *conditions.clauses)
    )
    with db.read() as connection:
        candidates = connection.execute(statement).fetchall()
        if not candidates:
            return []
        scores = reference_scores(np.vstack([row[1] for row in candidates]), query, distance)
        best = {
            candidates[i][0]: float(scores[i]) for i in np.argsort(-scores, kind="stable")[:limit]
        }
        rows = {
            row.id: dict(row._mapping)
            for row in connection.execute(select(items).where(items.c.id.in_(list(best))))
        }
    # an item deleted between the two reads is left out
    return [
        VectorMatch(item_id, score, rows[item_id])
        for item_id, score in best.items()
        if item_id in rows
    ]
