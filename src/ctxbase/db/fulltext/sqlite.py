"""SQLite FTS5 (Porter stemming), ranked by FTS5's built-in Okapi BM25."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import Connection, Table, literal_column, select
from sqlalchemy import table as light_table

from ctxbase.db.fulltext.stopwords import STOP_WORDS

# Tokens as FTS5's unicode61 tokenizer sees them: letters and digits; `_` separates.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def match_expression(query: str) -> str | None:
    """``"term1" OR "term2" …`` without stop words; None when nothing is left to match."""
    terms = dict.fromkeys(w for w in _WORD.findall(query.lower()) if w not in STOP_WORDS)
    if not terms:
        return None
    return " OR ".join(f'"{term}"' for term in terms)


def search(
    connection: Connection, items: Table, conditions: list[Any], query: str, limit: int
) -> list[tuple[uuid.UUID, float]]:
    expression = match_expression(query)
    if expression is None:
        return []
    fts = f"{items.name}_fts"
    rank: Any = literal_column(f"bm25({fts})")
    statement = (
        select(items.c.id, rank.label("rank"))
        .select_from(
            items.join(
                light_table(fts),
                literal_column(f"{fts}.rowid") == literal_column(f"{items.name}.rowid"),
            )
        )
        .where(literal_column(fts).op("MATCH")(expression), *conditions)
        .order_by(rank)
        .limit(limit)
    )
    # bm25() is negative, more negative is better: flip it so higher is better.
    return [(row.id, -float(row.rank)) for row in connection.execute(statement)]
