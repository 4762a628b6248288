"""Vectors for what the store holds: computed on write, cached by content, backfilled.

Vectors are computed *before* the write transaction (a model call must never hold the
database's write lock), then inserted in the same transaction as their items. Identical
text is embedded once per model: vectors are reused from an in-process cache, then from
the ``embeddings`` table by content hash. When the provider fails, the items are stored
anyway and stay pending; :meth:`Embeddings.backfill` (``ctxbase embed``) fills them in.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, and_, delete, func, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ctxbase.db.schema import (
    EMBEDDING_OWNER_COLUMNS,
    ContextUnit,
    Embedding,
    Memory,
    Message,
    new_id,
    table,
    utcnow,
)
from ctxbase.embeddings import Embedder, EmbeddingError, embedder_from_spec

if TYPE_CHECKING:
    from ctxbase.store.store import Store

log = logging.getLogger("ctxbase.embeddings")

embeddings_table = table(Embedding)
e = embeddings_table.c
KIND_TABLES = {"message": table(Message), "context": table(ContextUnit), "memory": table(Memory)}
_CACHE_SIZE = 20_000
_UNSET: Any = object()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Embeddings:
    """``store.embeddings``: the active embedder, vectors on write, and the backlog."""

    def __init__(self, store: Store, embedder: Embedder | None = _UNSET) -> None:
        self._store = store
        self._db = store.db
        self._embedder = embedder
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder | None:
        """The configured provider, built on first use (a local model loads lazily too)."""
        if self._embedder is _UNSET:
            settings = self._store.settings
            key = settings.embedder_api_key
            self._embedder = embedder_from_spec(
                settings.embedder,
                base_url=settings.embedder_base_url,
                api_key=key.get_secret_value() if key else None,
                dimensions=settings.embedder_dimensions,
                batch_size=settings.embedder_batch_size,
                timeout=settings.embedder_timeout,
                max_retries=settings.embedder_max_retries,
            )
        return self._embedder

    @property
    def model(self) -> str | None:
        """Name of the model whose vectors searches use, None without an embedder."""
        embedder = self.embedder
        return embedder.name if embedder is not None else None

    def embeds(self, kind: str) -> bool:
        return self.embedder is not None and kind in self._store.settings.embed_on_write

    # --- computing ---

    def vectors_for(self, kind: str, texts: list[str]) -> list[np.ndarray | None]:
        """One vector per text, or None for each when the kind is not embedded on write
        or the provider fails (those items stay pending)."""
        if not texts or not self.embeds(kind):
            return [None] * len(texts)
        try:
            return list(self.embed(texts))
        except EmbeddingError as error:
            log.warning("Embedding failed; %d %s(s) stored and queued: %s", len(texts), kind, error)
            return [None] * len(texts)

    def embed(self, texts: list[str]) -> list[np.ndarray]:
        """Vectors of ``texts`` under the active model, reusing every known vector."""
        embedder = self.embedder
        if embedder is None:
            raise EmbeddingError("No embedder is configured (CTXBASE_EMBEDDER=none)")
        hashes = [text_hash(t) for t in texts]
        known = self._known(embedder.name, set(hashes))
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        if missing:
            matrix = embedder.embed(list(missing.values()))
            for digest, vector in zip(missing, matrix, strict=True):
                known[digest] = np.ascontiguousarray(vector, dtype=np.float32)
            self._remember(embedder.name, {h: known[h] for h in missing})
        return [known[h] for h in hashes]

    def _known(self, model: str, hashes: set[str]) -> dict[str, np.ndarray]:
        with self._lock:
            found = {h: self._cache[(model, h)] for h in hashes if (model, h) in self._cache}
        wanted = sorted(hashes - found.keys())
        if wanted:
            with self._db.connect() as connection:
                for start in range(0, len(wanted), 500):
                    rows = connection.execute(
                        select(e.content_hash, e.vector).where(
                            e.model == model, e.content_hash.in_(wanted[start : start + 500])
                        )
                    )
                    for digest, vector in rows:
                        found.setdefault(digest, vector)
            self._remember(model, found)
        return found

    def _remember(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        with self._lock:
            for digest, vector in vectors.items():
                self._cache[(model, digest)] = vector
                self._cache.move_to_end((model, digest))
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    # --- storing ---

    def rows(
        self,
        kind: str,
        project_id: uuid.UUID,
        items: Iterable[tuple[uuid.UUID, str, np.ndarray | None]],
    ) -> list[dict[str, Any]]:
        """Embedding rows for (item id, text, vector) triples that have a vector."""
        model, owner = self.model, EMBEDDING_OWNER_COLUMNS[kind]
        now = utcnow()
        rows = []
        for item_id, text, vector in items:
            if vector is None or model is None:
                continue
            row: dict[str, Any] = dict.fromkeys(EMBEDDING_OWNER_COLUMNS.values())
            row.update(
                id=new_id(),
                project_id=project_id,
                model=model,
                dimensions=int(vector.shape[0]),
                content_hash=text_hash(text),
                vector=vector,
                created_at=now,
            )
            row[owner] = item_id
            rows.append(row)
        return rows

    def insert(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert rows, skipping any (item, model) that already has a vector."""
        if not rows:
            return
        insert = postgres_insert if self._db.backend == "postgresql" else sqlite_insert
        connection.execute(insert(embeddings_table).on_conflict_do_nothing(), rows)

    def insert_prepared(self, cursor: Any, rows: list[dict[str, Any]]) -> None:
        """:meth:`insert` on a driver cursor (the prepared-statement path)."""
        insert = postgres_insert if self._db.backend == "postgresql" else sqlite_insert
        statement = self._db.prepared(
            "embeddings.insert", lambda: insert(embeddings_table).on_conflict_do_nothing()
        )
        statement.many(cursor, rows)

    def forget(self, connection: Connection, kind: str, item_id: uuid.UUID) -> None:
        """Drop every vector of one item (its text changed)."""
        owner = embeddings_table.c[EMBEDDING_OWNER_COLUMNS[kind]]
        connection.execute(delete(embeddings_table).where(owner == item_id))

    # --- backlog ---

    def pending(self, kinds: Iterable[str] | None = None) -> dict[str, int]:
        """Items without a vector for the active model, per kind (all projects)."""
        model = self.model
        if model is None:
            return {}
        with self._db.connect() as connection:
            return {
                kind: int(
                    connection.execute(
                        select(func.count()).select_from(
                            self._pending_query(kind, model).subquery()
                        )
                    ).scalar()
                    or 0
                )
                for kind in (kinds or self._store.settings.embed_on_write)
            }

    def backfill(
        self,
        kinds: Iterable[str] | None = None,
        *,
        batch_size: int = 256,
        progress: Callable[[str, int], None] | None = None,
    ) -> int:
        """Embed every pending item; returns how many got a vector."""
        model = self.model
        if model is None:
            return 0
        done = 0
        for kind in kinds or self._store.settings.embed_on_write:
            while True:
                with self._db.connect() as connection:
                    batch = connection.execute(
                        self._pending_query(kind, model).limit(batch_size)
                    ).fetchall()
                if not batch:
                    break
                vectors = self.embed([row.content for row in batch])
                with self._db.connect(write=True) as connection:
                    for row, vector in zip(batch, vectors, strict=True):
                        self.insert(
                            connection,
                            self.rows(kind, row.project_id, [(row.id, row.content, vector)]),
                        )
                done += len(batch)
                if progress:
                    progress(kind, len(batch))
        return done

    def _pending_query(self, kind: str, model: str) -> Any:
        items = KIND_TABLES[kind]
        owner = embeddings_table.c[EMBEDDING_OWNER_COLUMNS[kind]]
        return (
            select(items.c.id, items.c.project_id, items.c.content)
            .outerjoin(embeddings_table, and_(owner == items.c.id, e.model == model))
            .where(e.id.is_(None))
            .order_by(items.c.id)
        )
