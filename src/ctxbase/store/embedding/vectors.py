"""Computing vectors, each text once per model: reused from this process's cache, then
from the ``embeddings`` table by content hash, and only then asked of the model."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import bindparam, select

from ctxbase.db.database import Database
from ctxbase.db.schema import ContextUnit, Embedding, Memory, Message, table
from ctxbase.embeddings import Embedder
from ctxbase.store.embedding.outcomes import ProviderOutcomes

embeddings_table = table(Embedding)
e = embeddings_table.c
KIND_TABLES = {"message": table(Message), "context": table(ContextUnit), "memory": table(Memory)}
_CACHE_SIZE = 20_000


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Vectors:
    """Vectors computed for some texts, and the model that made them (None: not embedded)."""

    model: str | None
    values: list[np.ndarray | None]


class VectorCache:
    """Vectors of texts, computed once per model and text and remembered."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.outcomes = ProviderOutcomes()

    def embed(
        self, texts: list[str], embedder: Embedder, *, remembered_only: bool = False
    ) -> list[np.ndarray]:
        """Vectors of ``texts``, reusing every known vector: from this process's cache,
        then (unless ``remembered_only``, as for queries, which are rarely stored) from
        the table."""
        hashes = [text_hash(t) for t in texts]
        known = self._known(embedder.name, set(hashes), use_table=not remembered_only)
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        if missing:
            try:
                matrix = embedder.embed(list(missing.values()))
            except Exception as error:  # told to /health, then handled by the caller
                self.outcomes.failed(embedder.name, error)
                raise
            self.outcomes.succeeded(embedder.name)
            for digest, vector in zip(missing, matrix, strict=True):
                known[digest] = np.ascontiguousarray(vector, dtype=np.float32)
            self._remember(embedder.name, {h: known[h] for h in missing})
        return [known[h] for h in hashes]

    def _known(self, model: str, hashes: set[str], *, use_table: bool) -> dict[str, np.ndarray]:
        with self._lock:
            found = {h: self._cache[(model, h)] for h in hashes if (model, h) in self._cache}
        wanted = sorted(hashes - found.keys())
        if wanted and use_table:
            # no snapshot needed: a read outside a transaction saves round trips
            with self._db.read() as connection:
                for start in range(0, len(wanted), 500):
                    # The hashes inline, not as 500 parameters: PostgreSQL's generic plan for
                    # a prepared IN of parameters compares every row with each (~0.5 s at
                    # 20,000 vectors), where a list of constants is hashed (~10 ms).
                    inline: Any = bindparam(
                        "hashes", wanted[start : start + 500], expanding=True, literal_execute=True
                    )
                    rows = connection.execute(
                        select(e.content_hash, e.vector).where(
                            e.model == model, e.content_hash.in_(inline)
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
