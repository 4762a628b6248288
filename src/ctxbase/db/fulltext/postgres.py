"""PostgreSQL full text ranked by Okapi BM25, like SQLite's FTS5.

PostgreSQL has no BM25 (``ts_rank`` ignores how rare a term is), so ranking is done
here: the GIN index on ``to_tsvector('english', content)`` finds the documents matching
any query lexeme (OR semantics, stop words dropped, Snowball stemming), and each is scored

    sum of idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))

with FTS5's constants and definitions: ``idf = ln((N - n + 0.5) / (n + 0.5))`` (at least
1e-6), ``N`` the rows of the table, ``n`` those containing the term, ``dl`` the
document's length in tokens, ``avgdl`` the mean length. Corpus statistics are cached for
a few seconds per table (``avgdl`` from a sample of large tables).
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from typing import Any

from sqlalchemy import Connection, Table, Text, cast, func, literal_column, select, text

ENGLISH: Any = literal_column("'english'::regconfig")
K1, B = 1.2, 0.75
MAX_CANDIDATES = 5000
STATS_TTL_SECONDS = 10.0
_SAMPLE_ROWS = 2000

_stats: dict[tuple[int, str], tuple[float, int, float]] = {}  # -> (when, N, avgdl)
_frequencies: dict[tuple[int, str, str], tuple[float, int]] = {}  # -> (when, n)
_lock = threading.Lock()


def document(items: Table) -> Any:
    """The indexed expression (see revision 0003): queries must use exactly this."""
    return func.to_tsvector(ENGLISH, items.c.content)


def lexemes(connection: Connection, query: str) -> list[str]:
    """The query's distinct lexemes: stemmed, stop words dropped."""
    found = connection.execute(
        text("SELECT unnest(tsvector_to_array(to_tsvector('english'::regconfig, :q)))"),
        {"q": query},
    ).scalars()
    return sorted(set(found))


def search(
    connection: Connection, items: Table, conditions: list[Any], query: str, limit: int
) -> list[tuple[uuid.UUID, float]]:
    terms = lexemes(connection, query)
    if not terms:
        return []
    any_term = func.to_tsquery("simple", " | ".join(_quoted(t) for t in terms))
    candidates = connection.execute(
        select(items.c.id, cast(document(items), Text))
        .where(document(items).op("@@")(any_term), *conditions)
        .limit(MAX_CANDIDATES)
    ).fetchall()
    wanted = set(terms)
    rows = [
        (item_id, term, tf, dl)
        for item_id, vector in candidates
        for (term, tf), dl in _frequencies_in(vector, wanted)
    ]
    if not rows:
        return []
    count, average = _corpus(connection, items)
    idf = {term: _idf(count, _frequency(connection, items, term)) for term in terms}
    scores: dict[uuid.UUID, float] = {}
    for item_id, term, tf, dl in rows:
        norm = K1 * (1 - B + B * dl / average)
        scores[item_id] = scores.get(item_id, 0.0) + idf[term] * tf * (K1 + 1) / (tf + norm)
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], str(pair[0])))
    return ranked[:limit]


_ENTRY = re.compile(r"'((?:[^']|'')*)'(?::([0-9A-D,]+))?")


def _frequencies_in(vector: str, wanted: set[str]) -> list[tuple[tuple[str, int], int]]:
    """((term, tf), document length) for the wanted terms of a tsvector in text form."""
    length, found = 1, []
    for match in _ENTRY.finditer(vector):
        term = match.group(1).replace("''", "'")
        positions = [int(p.rstrip("ABCD")) for p in (match.group(2) or "").split(",") if p]
        if positions:
            length = max(length, *positions)
        if term in wanted:
            found.append((term, max(len(positions), 1)))
    return [(entry, length) for entry in found]


def _quoted(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def _idf(count: int, containing: int) -> float:
    value = math.log((count - containing + 0.5) / (containing + 0.5))
    return value if value > 0 else 1e-6


def _corpus(connection: Connection, items: Table) -> tuple[int, float]:
    key = (id(connection.engine), items.name)
    now = time.monotonic()
    with _lock:
        cached = _stats.get(key)
    if cached and now - cached[0] < STATS_TTL_SECONDS:
        return cached[1], cached[2]
    count = int(connection.execute(select(func.count()).select_from(items)).scalar() or 0)
    sample = (
        ""
        if count <= _SAMPLE_ROWS
        else (f" TABLESAMPLE BERNOULLI ({min(100.0, 100.0 * _SAMPLE_ROWS / count):.6f})")
    )
    average = connection.execute(
        text(
            "SELECT avg(dl) FROM (SELECT (SELECT coalesce(max(p), 1) FROM "
            "unnest(to_tsvector('english'::regconfig, content)) AS x, unnest(x.positions) AS p)"
            f" AS dl FROM {items.name}{sample}) AS lengths"
        )
    ).scalar()
    result = (max(count, 1), float(average or 1.0))
    with _lock:
        _stats[key] = (now, *result)
    return result


def _frequency(connection: Connection, items: Table, term: str) -> int:
    key = (id(connection.engine), items.name, term)
    now = time.monotonic()
    with _lock:
        cached = _frequencies.get(key)
    if cached and now - cached[0] < STATS_TTL_SECONDS:
        return cached[1]
    containing = int(
        connection.execute(
            select(func.count())
            .select_from(items)
            .where(document(items).op("@@")(func.to_tsquery("simple", _quoted(term))))
        ).scalar()
        or 0
    )
    with _lock:
        _frequencies[key] = (now, containing)
    return containing
