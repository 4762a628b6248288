"""Full-text search: the one seam, with one module per backend.

Queries are natural language: OR semantics over stemmed terms, stop words dropped,
ranked best first. Each backend returns ``(item id, score)`` pairs, higher is better.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Table

from ctxbase.db.fulltext import postgres, sqlite


def text_search(
    connection: Connection,
    backend: str,
    items: Table,
    conditions: list[Any],
    query: str,
    limit: int,
) -> list[tuple[uuid.UUID, float]]:
    """The ``limit`` best matches of ``query`` among ``items`` rows meeting ``conditions``."""
    module = postgres if backend == "postgresql" else sqlite
    return module.search(connection, items, conditions, query, limit)
