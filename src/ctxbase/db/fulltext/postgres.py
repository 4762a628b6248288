"""PostgreSQL text search: the ``english`` configuration, GIN-indexed, OR over lexemes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, literal_column, select

ENGLISH = literal_column("'english'::regconfig")


def or_query(query: str) -> Any:
    """The query's lexemes (stemmed, stop words dropped by PostgreSQL) joined by OR.

    Lexemes are quoted and parsed with the ``simple`` configuration so they are not
    stemmed twice; a query of stop words only gives NULL, which matches nothing.
    """
    lexemes = func.unnest(
        func.tsvector_to_array(func.to_tsvector(ENGLISH, bindparam("query", query)))
    ).column_valued("word")
    joined = func.string_agg(func.quote_literal(lexemes), " | ")
    return select(func.to_tsquery("simple", joined)).scalar_subquery()


def document(items: Table) -> Any:
    """The indexed expression (see revision 0003): queries must use exactly this."""
    return func.to_tsvector(ENGLISH, items.c.content)


def search(
    connection: Connection, items: Table, conditions: list[Any], query: str, limit: int
) -> list[tuple[uuid.UUID, float]]:
    tsquery = or_query(query)
    rank = func.ts_rank_cd(document(items), tsquery)
    statement = (
        select(items.c.id, rank.label("rank"))
        .where(document(items).op("@@")(tsquery), *conditions)
        .order_by(rank.desc(), items.c.id)
        .limit(limit)
    )
    return [(row.id, float(row.rank)) for row in connection.execute(statement)]
