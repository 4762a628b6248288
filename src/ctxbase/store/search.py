"""One search over messages, context units and memories: vector, full text, or hybrid.

- vector: the query's embedding against stored vectors of the active model (pgvector
  on PostgreSQL, exact numpy elsewhere); ``threshold`` drops weak hits.
- text: natural-language full text (OR over stemmed terms, stop words dropped).
- hybrid: both, fused by weighted reciprocal rank (``w / (rrf_k + rank)``).

Memory hits are boosted by importance, recency and access count; returned memories count
an access. Without usable vectors (no embedder, provider down, nothing embedded yet)
vector and hybrid searches fall back to full text and say why in ``fallback``.
"""

from __future__ import annotations

import math
import re
import uuid
import weakref
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, or_, select, update

from ctxbase.db import fulltext
from ctxbase.db.schema import EMBEDDING_OWNER_COLUMNS, Conversation, table, utcnow
from ctxbase.db.types import VECTOR_STORAGE_ATTR
from ctxbase.db.vectors import exact, pgvector
from ctxbase.db.vectors.sqlite import SQLiteVectorIndex
from ctxbase.embeddings import EmbeddingError
from ctxbase.records import (
    ContextUnit,
    Memory,
    Message,
    SearchFilters,
    SearchHit,
    SearchRequest,
    SearchResult,
    search_values,
)
from ctxbase.store.base import DEFAULT_PROJECT, Domain, parse, project_id_expression
from ctxbase.store.embedding import KIND_TABLES, embeddings_table
from ctxbase.store.filters import metadata_matches

# Identifier-like tokens: codes, snake_case and camelCase names (E4471, parse_lines, getUser).
_TOKEN = re.compile(r"[\w.\-:/#]+")
_IDENTIFIER = re.compile(r"(?=.*[0-9_])|(?=.*[a-z][A-Z])")

RECORDS: dict[str, type[Message | ContextUnit | Memory]] = {
    "message": Message,
    "context": ContextUnit,
    "memory": Memory,
}
conversations_table = table(Conversation)
_FIELDS_OF = {
    "message": {"agent_id", "conversation_id"},
    "context": {"source_type"},
    "memory": {"agent_id", "user_id", "conversation_id", "memory_type"},
}
Candidates = dict[tuple[str, uuid.UUID], float]


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
        # Everything that may read settings or call a model happens before the connection.
        model = self._store.embeddings.model
        query_vector, fallback = self._query_vector(request)
        if query_vector is not None and model is not None:
            self._ensure_index(model, query_vector, request)
        # The project is resolved inside each statement (no round trip of its own); only an
        # empty result checks that it exists, to tell "nothing found" from "no project".
        scope = self._scope_params(project)
        project_id = project_id_expression(scope["scope_tenant"], project)
        with self._db.read() as connection:
            vector, text, seen, fetched = self._candidates(
                connection, request, project_id, model, query_vector, now
            )
            if not vector and not text:
                self._project_id(connection, project)
        if query_vector is not None and not seen and request.mode != "text":
            fallback = "no stored vectors match yet (embeddings pending or none of this model)"
        hits = self._rank(
            request, vector, text, vector_ok=query_vector is not None and bool(vector)
        )
        return SearchResult(
            hits=self._resolve(hits, project_id, now, request.k, request.query, fetched),
            mode=request.mode,
            fallback=fallback,
        )

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

    def _uses_pgvector(self) -> bool:
        return getattr(self._db.engine.dialect, VECTOR_STORAGE_ATTR, "bytes") == "pgvector"

    def _index_options(self) -> pgvector.IndexOptions:
        s = self._settings
        return pgvector.IndexOptions(
            kind=s.vector_index,
            m=s.hnsw_m,
            ef_construction=s.hnsw_ef_construction,
            lists=s.ivfflat_lists,
        )

    def prepare_index(self, model: str, dimensions: int, distance: str = "cosine") -> None:
        """Build a model's pgvector index now (re-embedding does, before switching)."""
        if not self._uses_pgvector():
            return
        with self._db.connect(write=True) as connection:
            pgvector.ensure_index(
                connection,
                self._db.url.masked(),
                model,
                dimensions,
                distance,  # type: ignore[arg-type]
                self._index_options(),
            )

    def _ensure_index(self, model: str, query_vector: np.ndarray, request: SearchRequest) -> None:
        if self._db.backend == "sqlite":
            _sqlite_index(self._db).prepare(self._db)
            return
        if not self._uses_pgvector():
            return
        options, dimensions = self._index_options(), int(query_vector.shape[0])
        if pgvector.is_built(
            self._db.url.masked(), model, dimensions, request.distance, options.kind
        ):
            return
        with self._db.connect(write=True) as connection:
            pgvector.ensure_index(
                connection,
                self._db.url.masked(),
                model,
                int(query_vector.shape[0]),
                request.distance,
                self._index_options(),
            )

    def _candidates(
        self,
        connection: Connection,
        request: SearchRequest,
        project_id: Any,
        model: str | None,
        query_vector: np.ndarray | None,
        now: datetime,
    ) -> tuple[Candidates, Candidates, bool, dict[tuple[str, uuid.UUID], Any]]:
        """Vector and text candidates, whether any stored vector was compared, and the
        item rows the vector leg already read."""
        vector: Candidates = {}
        text: Candidates = {}
        seen = False
        fetched: dict[tuple[str, uuid.UUID], Any] = {}
        depth = request.k if request.mode != "hybrid" else max(request.k * 4, 40)
        scopes = {
            kind: conditions
            for kind in dict.fromkeys(request.kinds)
            if (conditions := self._conditions(kind, request.filters, project_id, now)) is not None
        }
        if query_vector is not None and model is not None:
            for kind, conditions in scopes.items():
                found = self._vector_leg(
                    connection,
                    kind,
                    model,
                    KIND_TABLES[kind],
                    conditions,
                    query_vector,
                    request,
                    depth,
                    project_id,
                )
                seen = seen or bool(found)
                fetched.update(((kind, item_id), row) for item_id, _, row in found if row)
                threshold = request.threshold
                if threshold is None and request.mode == "vector":
                    threshold = self._settings.search_threshold
                for item_id, score, _row in found:
                    if threshold is None or score >= threshold:
                        vector[(kind, item_id)] = score
        if request.mode != "vector" or not seen:
            for kind, conditions in scopes.items():
                for item_id, score in fulltext.text_search(
                    connection,
                    self._db.backend,
                    KIND_TABLES[kind],
                    conditions,
                    request.query,
                    depth,
                ):
                    text[(kind, item_id)] = score
        return vector, text, seen, fetched

    def _vector_leg(
        self,
        connection: Connection,
        kind: str,
        model: str,
        items: Table,
        conditions: list[Any],
        query_vector: np.ndarray,
        request: SearchRequest,
        depth: int,
        project_id: Any,
    ) -> list[tuple[uuid.UUID, float, Any]]:
        owner = embeddings_table.c[EMBEDDING_OWNER_COLUMNS[kind]]
        arguments = (
            connection,
            embeddings_table,
            items,
            owner,
            conditions,
            model,
            query_vector,
            request.distance,
            depth,
        )
        found: list[tuple[uuid.UUID, float, Any]]
        if self._uses_pgvector():
            found = pgvector.search(*arguments, project_id)
        elif self._db.backend == "sqlite":
            found = [(i, score, None) for i, score in _sqlite_index(self._db).search(*arguments)]
        else:  # PostgreSQL without pgvector
            found = [(i, score, None) for i, score in exact.search(*arguments)]
        return found

    def _conditions(
        self, kind: str, filters: SearchFilters, project_id: Any, now: datetime
    ) -> list[Any] | None:
        """SQL conditions on the kind's table, or None when a filter rules the kind out."""
        wanted = {
            name
            for name in _FIELDS_OF["memory"] | _FIELDS_OF["context"]
            if getattr(filters, name) is not None
        }
        if wanted - _FIELDS_OF[kind]:
            return None
        items = KIND_TABLES[kind]
        conditions: list[Any] = [items.c.project_id == project_id]
        if filters.created_after is not None:
            conditions.append(items.c.created_at >= filters.created_after)
        if filters.created_before is not None:
            conditions.append(items.c.created_at < filters.created_before)
        if filters.metadata:
            conditions.append(
                metadata_matches(items.c.metadata, filters.metadata, self._db.backend)
            )
        if kind == "context":
            conditions.append(items.c.superseded_by.is_(None))
        if kind == "memory":
            conditions.append(or_(items.c.expires_at.is_(None), items.c.expires_at > now))
        for name in wanted & {"user_id", "memory_type", "source_type"}:
            conditions.append(items.c[name] == getattr(filters, name))
        if filters.conversation_id is not None:
            conditions.append(items.c.conversation_id == filters.conversation_id)
        if filters.agent_id is not None:
            if kind == "memory":
                conditions.append(items.c.agent_id == filters.agent_id)
            else:
                conversations = select(conversations_table.c.id).where(
                    conversations_table.c.agent_id == filters.agent_id,
                    conversations_table.c.project_id == project_id,
                )
                conditions.append(items.c.conversation_id.in_(conversations))
        return conditions

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
        return [(key, entry.pop("score"), "hybrid", entry) for key, entry in fused.items()]

    # --- records ---

    def _resolve(
        self,
        ranked: list[Any],
        project_id: Any,
        now: datetime,
        k: int,
        query: str,
        fetched: dict[tuple[str, uuid.UUID], Any],
    ) -> list[SearchHit]:
        """Load the records not read yet, boost memories, keep the best k, count access."""
        if not ranked:
            return []
        records = {key: RECORDS[key[0]].model_validate(row) for key, row in fetched.items()}
        missing: dict[str, list[uuid.UUID]] = {}
        for kind, item_id, *_ in ranked:
            if (kind, item_id) not in records:
                missing.setdefault(kind, []).append(item_id)
        if missing:
            with self._db.read() as connection:
                for kind, ids in missing.items():
                    items = KIND_TABLES[kind]
                    rows = connection.execute(
                        select(items).where(items.c.id.in_(ids), items.c.project_id == project_id)
                    )
                    for row in rows:
                        records[(kind, row.id)] = RECORDS[kind].model_validate(row._mapping)
        identifiers = _identifiers(query)
        hits = []
        for kind, item_id, score, method, details in ranked:
            record = records.get((kind, item_id))
            if record is None:  # deleted meanwhile
                continue
            if method == "hybrid" and identifiers and _contains_any(record, identifiers):
                score += self._settings.hybrid_exact_weight / (self._settings.hybrid_rrf_k + 1)
                details = {**details, "exact_identifier": True}
            if isinstance(record, Memory):
                factor = self._memory_boost(record, now)
                details = {**details, "boost": factor}
                score *= factor
            hits.append(
                SearchHit(
                    kind=kind,
                    id=item_id,
                    score=score,
                    retrieval_method=method,
                    item=record,
                    details=details,
                )
            )
        hits.sort(key=lambda hit: -hit.score)
        hits = hits[:k]
        self._count_access([hit for hit in hits if hit.kind == "memory"], now)
        return hits

    def _memory_boost(self, memory: Memory, now: datetime) -> float:
        s = self._settings
        age_days = max(0.0, (now - memory.created_at).total_seconds() / 86400)
        recency = 0.5 ** (age_days / s.memory_recency_half_life_days)
        access = min(1.0, math.log1p(memory.access_count) / math.log1p(100))
        return 1.0 + (
            s.memory_importance_weight * memory.importance
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


_SQLITE_INDEXES: weakref.WeakKeyDictionary[Any, SQLiteVectorIndex] = weakref.WeakKeyDictionary()


def _sqlite_index(db: Any) -> SQLiteVectorIndex:
    """One in-memory vector index per database, shared by every view of the store."""
    index = _SQLITE_INDEXES.get(db.engine)
    if index is None:
        index = _SQLITE_INDEXES[db.engine] = SQLiteVectorIndex()
    return index


def _identifiers(query: str) -> list[str]:
    """Tokens of the query that look like identifiers, lower-cased, at least 4 long."""
    return [
        token.strip(".-:/#").lower()
        for token in _TOKEN.findall(query)
        if len(token) >= 4 and _IDENTIFIER.match(token.strip(".-:/#"))
    ]


def _contains_any(record: Any, identifiers: list[str]) -> bool:
    content = record.content.lower()
    return any(identifier in content for identifier in identifiers)
