"""One search over messages, context units and memories: vector, full text, or hybrid.

- vector: the query's embedding against stored vectors of the active model (pgvector
  on PostgreSQL; on SQLite vectors in memory, with an HNSW index for large collections;
  exact numpy on PostgreSQL without pgvector); ``threshold`` drops weak hits. The vector
  legs run prepared statements, one per shape of conditions (see search_conditions).
- text: natural-language full text (OR over stemmed terms, stop words dropped).
- hybrid: both, fused by weighted reciprocal rank (``w / (rrf_k + rank)``).

Memory hits are boosted by importance, recency and access count; returned memories count
an access. Without usable vectors (no embedder, provider down, nothing embedded yet), or
when no vector hit reaches the threshold, vector and hybrid searches fall back to full
text and say why in ``fallback``.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import TypeAdapter
from sqlalchemy import Connection, func, select, update

from ctxbase.db.schema import EMBEDDING_OWNER_COLUMNS, utcnow
from ctxbase.db.vectors.base import Distance, VectorMatch
from ctxbase.embeddings import EmbeddingError
from ctxbase.records import (
    Memory,
    SearchFilters,
    SearchHit,
    SearchRequest,
    SearchResult,
    search_values,
)
from ctxbase.store import time_expressions
from ctxbase.store.base import DEFAULT_PROJECT, Domain, parse
from ctxbase.store.embedding import KIND_TABLES, embeddings_table
from ctxbase.store.search_conditions import ItemConditions, item_conditions

# Identifier-like tokens: codes, snake_case and camelCase names (E4471, parse_lines, getUser).
_TOKEN = re.compile(r"[\w.\-:/#]+")
_IDENTIFIER = re.compile(r"(?=.*[0-9_])|(?=.*[a-z][A-Z])")

Candidates = dict[tuple[str, uuid.UUID], float]
_HITS = TypeAdapter(list[SearchHit])


class Search(Domain):
    """``store.search(query, …)``."""

    def __call__(
        self,
        query: str,
        *,
        kinds: list[str] | None = None,
        mode: str = "hybrid",
        k: int = 10,
        threshold: float | None = None,
        filters: SearchFilters | dict[str, Any] | None = None,
        distance: str = "cosine",
        project: str = DEFAULT_PROJECT,
    ) -> SearchResult:
        values = search_values(
            query,
            kinds=kinds,
            mode=mode,
            k=k,
            threshold=threshold,
            filters=filters,
            distance=distance,
        )
        request = parse(SearchRequest, values)
        now = utcnow()
        if request.filters.during is not None:
            request = self._within_time(request, project, now)
        # Everything that may read settings or call a model happens before the connection.
        model = self._store.embeddings.model
        query_vector, fallback = self._query_vector(request)
        if query_vector is not None and model is not None:
            self._ensure_index(model, query_vector, request)
        # The project is resolved inside each statement (no round trip of its own); only an
        # empty result checks that it exists, to tell "nothing found" from "no project".
        scopes = self._scopes(request, project, now)
        depth = request.k if request.mode != "hybrid" else max(request.k * 4, 40)
        vector, seen, fetched = self._vector_candidates(request, scopes, model, query_vector, depth)
        text: Candidates = {}
        if request.mode != "vector" or not vector:
            with self._db.read() as connection:
                text = self._text_candidates(connection, request, scopes, depth)
                if not vector and not text:
                    self._project_id(connection, project)
        if query_vector is not None and not seen and request.mode != "text":
            fallback = "no stored vectors match yet (embeddings pending or none of this model)"
        elif query_vector is not None and not vector and request.mode != "text":
            # Vectors were compared, none reached the threshold: the hits are full text's.
            fallback = f"no vector hit reached the threshold {self._threshold(request)}"
        hits = self._rank(
            request, vector, text, vector_ok=query_vector is not None and bool(vector)
        )
        return SearchResult(
            hits=self._resolve(hits, scopes, now, request.k, request.query, fetched),
            mode=request.mode,
            fallback=fallback,
        )

    def _scopes(
        self, request: SearchRequest, project: str, now: datetime
    ) -> dict[str, ItemConditions]:
        """The kinds searched and their conditions (a kind a filter rules out is left out)."""
        tenant = self._scope_params(project)["scope_tenant"]
        scopes: dict[str, ItemConditions] = {}
        for kind in dict.fromkeys(request.kinds):
            conditions = item_conditions(
                kind, request.filters, tenant, project, now, self._db.backend
            )
            if conditions is not None:
                scopes[kind] = conditions
        return scopes

    def _within_time(self, request: SearchRequest, project: str, now: datetime) -> SearchRequest:
        """The request with ``during`` applied as created_after / created_before."""
        filters = request.filters
        anchor = filters.time_anchor or self._newest(request, project, now) or now
        start, end = time_expressions.resolve(filters.during or "", anchor)
        if filters.created_after is not None:
            start = max(start, filters.created_after)
        if filters.created_before is not None:
            end = min(end, filters.created_before)
        bounded = filters.model_copy(update={"created_after": start, "created_before": end})
        return request.model_copy(update={"filters": bounded})

    def _newest(self, request: SearchRequest, project: str, now: datetime) -> datetime | None:
        """When the newest item this search could return was created."""
        newest = None
        with self._db.read() as connection:
            for kind, conditions in self._scopes(request, project, now).items():
                items = KIND_TABLES[kind]
                found = connection.execute(
                    select(func.max(items.c.created_at)).where(*conditions.clauses)
                ).scalar()
                if found is not None and (newest is None or found > newest):
                    newest = found
        return newest

    # --- legs ---

    def _query_vector(self, request: SearchRequest) -> tuple[np.ndarray | None, str | None]:
        if request.mode == "text":
            return None, None
        embeddings = self._store.embeddings
        if embeddings.model is None:
            return None, "no embedder is configured"
        try:
            return embeddings.embed([request.query], remembered_only=True)[0], None
        except EmbeddingError as e:
            return None, f"the embedding provider failed: {e.message}"

    def prepare_index(self, model: str, dimensions: int, distance: str = "cosine") -> None:
        """Build a model's vector index now (re-embedding does, before switching): the
        pgvector index, or on SQLite the in-memory vectors and their HNSW indexes."""
        self._db.backend.build_vector_index(self._db, model, dimensions, distance)  # type: ignore[arg-type]

    def _ensure_index(self, model: str, query_vector: np.ndarray, request: SearchRequest) -> None:
        dimensions = int(query_vector.shape[0])
        self._db.backend.prepare_vector_search(self._db, model, dimensions, request.distance)

    def _vector_candidates(
        self,
        request: SearchRequest,
        scopes: dict[str, ItemConditions],
        model: str | None,
        query_vector: np.ndarray | None,
        depth: int,
    ) -> tuple[Candidates, bool, dict[tuple[str, uuid.UUID], dict[str, Any]]]:
        """Vector candidates above the threshold, whether any stored vector was compared,
        and the item rows read on the way."""
        vector: Candidates = {}
        seen = False
        fetched: dict[tuple[str, uuid.UUID], dict[str, Any]] = {}
        if query_vector is None or model is None:
            return vector, seen, fetched
        threshold = self._threshold(request)
        for kind, conditions in scopes.items():
            found = self._vector_leg(conditions, model, query_vector, request.distance, depth)
            seen = seen or bool(found)
            for item_id, score, row in found:
                fetched[(kind, item_id)] = row
                if threshold is None or score >= threshold:
                    vector[(kind, item_id)] = score
        return vector, seen, fetched

    def _threshold(self, request: SearchRequest) -> float | None:
        """The least vector score kept: the request's, else the setting in vector mode."""
        if request.threshold is None and request.mode == "vector":
            return self._settings.search_threshold
        return request.threshold

    def _text_candidates(
        self,
        connection: Connection,
        request: SearchRequest,
        scopes: dict[str, ItemConditions],
        depth: int,
    ) -> Candidates:
        text: Candidates = {}
        for kind, conditions in scopes.items():
            for item_id, score in self._db.backend.text_search(
                connection,
                KIND_TABLES[kind],
                conditions.clauses,
                request.query,
                depth,
            ):
                text[(kind, item_id)] = score
        return text

    def _vector_leg(
        self,
        conditions: ItemConditions,
        model: str,
        query_vector: np.ndarray,
        distance: Distance,
        depth: int,
    ) -> list[VectorMatch]:
        """The ``depth`` nearest items."""
        kind = conditions.kind
        items, owner = KIND_TABLES[kind], embeddings_table.c[EMBEDDING_OWNER_COLUMNS[kind]]
        return self._db.backend.vector_search(
            self._db, conditions, items, owner, model, query_vector, distance, depth
        )

    # --- ranking ---

    def _rank(
        self, request: SearchRequest, vector: Candidates, text: Candidates, *, vector_ok: bool
    ) -> list[tuple[str, uuid.UUID, float, str, dict[str, Any]]]:
        if request.mode == "vector" and vector_ok:
            ranked = [
                (key, score, "vector", {"similarity": score}) for key, score in vector.items()
            ]
        elif request.mode == "hybrid" and vector_ok:
            ranked = self._fuse(vector, text)
        else:
            ranked = [(key, score, "text", {"text_score": score}) for key, score in text.items()]
        ranked.sort(key=lambda entry: -entry[1])
        return [
            (kind, item_id, score, method, details)
            for (kind, item_id), score, method, details in ranked
        ]

    def _fuse(self, vector: Candidates, text: Candidates) -> list[Any]:
        s = self._settings
        fused: dict[tuple[str, uuid.UUID], dict[str, Any]] = {}
        for leg, weight, found in (
            ("vector", s.hybrid_vector_weight, vector),
            ("text", s.hybrid_text_weight, text),
        ):
            ordered = sorted(found.items(), key=lambda pair: -pair[1])
            for rank, (key, score) in enumerate(ordered, start=1):
                entry = fused.setdefault(key, {"score": 0.0})
                entry["score"] += weight / (s.hybrid_rrf_k + rank)
                entry[f"{leg}_rank"], entry[f"{leg}_score"] = rank, score
        for entry in fused.values():  # the fused score, before any boost of the hit's own
            entry["fused_score"] = entry["score"]
        return [(key, entry.pop("score"), "hybrid", entry) for key, entry in fused.items()]

    # --- records ---

    def _resolve(
        self,
        ranked: list[Any],
        scopes: dict[str, ItemConditions],
        now: datetime,
        k: int,
        query: str,
        fetched: dict[tuple[str, uuid.UUID], dict[str, Any]],
    ) -> list[SearchHit]:
        """Load the rows not read yet, boost memories, keep the best k, count access.

        Ranking works on rows; only the k hits returned become records."""
        if not ranked:
            return []
        rows = {**fetched, **self._missing_rows(ranked, fetched, scopes)}
        identifiers = _identifiers(query) if any(entry[3] == "hybrid" for entry in ranked) else []
        scored = []
        for kind, item_id, score, method, details in ranked:
            row = rows.get((kind, item_id))
            if row is None:  # deleted meanwhile
                continue
            if method == "hybrid" and identifiers and _contains_any(row["content"], identifiers):
                score += self._settings.hybrid_exact_weight / (self._settings.hybrid_rrf_k + 1)
                details = {**details, "exact_identifier": True}
            if kind == "memory":
                factor = self._memory_boost(row, now)
                details = {**details, "boost": factor}
                score *= factor
            scored.append((score, kind, item_id, method, details, row))
        scored.sort(key=lambda entry: -entry[0])
        hits = _HITS.validate_python(  # in one call: a quarter less than hit by hit
            [
                {
                    "kind": kind,
                    "id": item_id,
                    "score": score,
                    "retrieval_method": method,
                    "item": row,
                    "details": details,
                }
                for score, kind, item_id, method, details, row in scored[:k]
            ]
        )
        self._count_access([hit for hit in hits if hit.kind == "memory"], now)
        return hits

    def _missing_rows(
        self,
        ranked: list[Any],
        fetched: dict[tuple[str, uuid.UUID], Any],
        scopes: dict[str, ItemConditions],
    ) -> dict[tuple[str, uuid.UUID], Any]:
        """The rows of ranked items no leg has read (those found by full text only)."""
        missing: dict[str, list[uuid.UUID]] = {}
        for kind, item_id, *_ in ranked:
            if (kind, item_id) not in fetched:
                missing.setdefault(kind, []).append(item_id)
        rows: dict[tuple[str, uuid.UUID], Any] = {}
        if not missing:
            return rows
        with self._db.read() as connection:
            for kind, ids in missing.items():
                items = KIND_TABLES[kind]
                project_id = scopes[kind].project_id
                for row in connection.execute(
                    select(items).where(items.c.id.in_(ids), items.c.project_id == project_id)
                ):
                    rows[(kind, row.id)] = row._mapping
        return rows

    def _memory_boost(self, memory: Any, now: datetime) -> float:
        """The ranking factor of a memory row: importance, recency and access count."""
        s = self._settings
        age_days = max(0.0, (now - memory["created_at"]).total_seconds() / 86400)
        recency = 0.5 ** (age_days / s.memory_recency_half_life_days)
        access = min(1.0, math.log1p(memory["access_count"]) / math.log1p(100))
        return 1.0 + (
            s.memory_importance_weight * memory["importance"]
            + s.memory_recency_weight * recency
            + s.memory_access_weight * access
        )

    def _count_access(self, hits: list[SearchHit], now: datetime) -> None:
        if not hits:
            return
        memories = KIND_TABLES["memory"]
        with self._db.connect(write=True) as connection:
            connection.execute(
                update(memories)
                .where(memories.c.id.in_([hit.id for hit in hits]))
                .values(access_count=memories.c.access_count + 1, last_accessed_at=now)
            )
        for hit in hits:
            assert isinstance(hit.item, Memory)
            hit.item = hit.item.model_copy(
                update={"access_count": hit.item.access_count + 1, "last_accessed_at": now}
            )


def _identifiers(query: str) -> list[str]:
    """Tokens of the query that look like identifiers, lower-cased, at least 4 long."""
    return [
        token.strip(".-:/#").lower()
        for token in _TOKEN.findall(query)
        if len(token) >= 4 and _IDENTIFIER.match(token.strip(".-:/#"))
    ]


def _contains_any(content: str, identifiers: list[str]) -> bool:
    lowered = content.lower()
    return any(identifier in lowered for identifier in identifiers)
