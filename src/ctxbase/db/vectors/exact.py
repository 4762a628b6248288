"""Exact vector search with numpy: SQLite, and PostgreSQL without pgvector.

Reads the candidate vectors (one model, filtered in SQL) and scores them all. Exact by
construction; cost grows with the number of candidates.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, select

from ctxbase.db.vectors.base import Distance, reference_scores


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
) -> list[tuple[uuid.UUID, float]]:
    statement = (
        select(owner, embeddings.c.vector)
        .select_from(embeddings.join(items, owner == items.c.id))
        .where(embeddings.c.model == model, *conditions)
    )
    rows = connection.execute(statement).fetchall()
    if not rows:
        return []
    scores = reference_scores(np.vstack([row[1] for row in rows]), query, distance)
    best = np.argsort(-scores, kind="stable")[:limit]
    return [(rows[i][0], float(scores[i])) for i in best]
