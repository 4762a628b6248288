"""``store.embeddings``: the service the store's domains call for vectors, on write."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, delete

from ctxbase.db.schema import EMBEDDING_OWNER_COLUMNS, new_id, utcnow
from ctxbase.embeddings import Embedder, EmbeddingError
from ctxbase.store.embedding import backlog
from ctxbase.store.embedding.backlog import ProgressCallback
from ctxbase.store.embedding.models import UNSET, ActiveModel
from ctxbase.store.embedding.vectors import VectorCache, Vectors, embeddings_table, text_hash

if TYPE_CHECKING:
    from ctxbase.store.store import Store

log = logging.getLogger("ctxbase.embeddings")


class Embeddings:
    """``store.embeddings``: the active embedder, vectors on write, and the backlog."""

    def __init__(self, store: Store, embedder: Embedder | None = UNSET) -> None:
        self.store = store
        self.db = store.db
        self.models = ActiveModel(store.db, store.settings, embedder)
        self._vectors = VectorCache(store.db)
        #: The provider's last failure per model, until it answers again (for /health).
        self.outcomes = self._vectors.outcomes

    @property
    def embedder(self) -> Embedder | None:
        """The provider of the active model (see ``models``)."""
        return self.models.embedder

    @property
    def model(self) -> str | None:
        """Name of the model whose vectors searches use, None without an embedder."""
        embedder = self.embedder
        return embedder.name if embedder is not None else None

    def active_model(self) -> str | None:
        """The model recorded in the database (re-read every few seconds)."""
        return self.models.name()

    def record_active_model(self) -> None:
        """On open: a database without an active model takes this process's model."""
        self.models.record()

    # --- computing ---

    def embeds(self, kind: str) -> bool:
        """Whether ``kind`` gets vectors when written (an embedder, and the kind listed)."""
        return self.embedder is not None and kind in self.store.settings.embed_on_write

    @property
    def message_context(self) -> int:
        """Earlier turns embedded with a message (see :mod:`.turns`), 0 when messages are
        not embedded on write."""
        return self.store.settings.embed_message_context if self.embeds("message") else 0

    def vectors_for(self, kind: str, texts: list[str]) -> Vectors:
        """One vector per text, or None for each when the kind is not embedded on write
        or the provider fails (those items stay pending). Call it before the write
        transaction: it may call the model and read the database."""
        embedder = self.embedder
        if not texts or embedder is None or kind not in self.store.settings.embed_on_write:
            return Vectors(None, [None] * len(texts))
        try:
            return Vectors(embedder.name, list(self.embed(texts, embedder)))
        except EmbeddingError as error:
            log.warning("Embedding failed; %d %s(s) stored and queued: %s", len(texts), kind, error)
            return Vectors(None, [None] * len(texts))

    def embed(
        self, texts: list[str], embedder: Embedder | None = None, *, remembered_only: bool = False
    ) -> list[np.ndarray]:
        """Vectors of ``texts`` (active model unless told), reusing every known vector."""
        embedder = embedder or self.embedder
        if embedder is None:
            raise EmbeddingError("No embedder is configured (CTXBASE_EMBEDDER=none)")
        return self._vectors.embed(texts, embedder, remembered_only=remembered_only)

    # --- storing ---

    def rows(
        self,
        kind: str,
        project_id: uuid.UUID,
        items: Iterable[tuple[uuid.UUID, str]],
        vectors: Vectors,
    ) -> list[dict[str, Any]]:
        """Embedding rows for the (item id, embedded text) pairs, one per vector computed."""
        model, owner = vectors.model, EMBEDDING_OWNER_COLUMNS[kind]
        now = utcnow()
        rows = []
        for (item_id, text), vector in zip(items, vectors.values, strict=True):
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
        statement = self.db.backend.insert(embeddings_table).on_conflict_do_nothing()
        connection.execute(statement, rows)

    def insert_prepared(self, cursor: Any, rows: list[dict[str, Any]]) -> None:
        """:meth:`insert` on a driver cursor (the prepared-statement path)."""
        backend = self.db.backend
        statement = self.db.prepared(
            "embeddings.insert", lambda: backend.insert(embeddings_table).on_conflict_do_nothing()
        )
        statement.many(cursor, rows)

    def replace(
        self,
        connection: Connection,
        kind: str,
        item: tuple[uuid.UUID, uuid.UUID, str],
        vectors: Any,
    ) -> None:
        """An item's text changed: drop every vector of its old text and store those of
        the new one. ``item`` is (project id, item id, new text); ``vectors`` are what
        :meth:`vectors_for` gave for that text."""
        project_id, item_id, text = item
        owner = embeddings_table.c[EMBEDDING_OWNER_COLUMNS[kind]]
        connection.execute(delete(embeddings_table).where(owner == item_id))
        self.insert(connection, self.rows(kind, project_id, [(item_id, text)], vectors))

    # --- backlog and re-embedding ---

    def pending(
        self, kinds: Iterable[str] | None = None, *, model: str | None = None
    ) -> dict[str, int]:
        """Items without a vector of ``model`` (the active one), per kind (all projects)."""
        model = model or self.model
        if model is None:
            return {}
        return backlog.count_pending(self, kinds or self.store.settings.embed_on_write, model)

    def backfill(
        self,
        kinds: Iterable[str] | None = None,
        *,
        batch_size: int = 256,
        progress: ProgressCallback | None = None,
        skip: Collection[uuid.UUID] = (),
        failed: backlog.FailureCallback | None = None,
    ) -> int:
        """Embed every item still without a vector of the active model; returns how many.
        ``skip`` and ``failed``: see :func:`backlog.fill` (the server's worker uses them so
        that one item the provider refuses does not hold up the others)."""
        embedder = self.embedder
        if embedder is None:
            return 0
        kinds = list(kinds or self.store.settings.embed_on_write)
        return backlog.fill(self, embedder, kinds, batch_size, progress, skip=skip, failed=failed)

    def reembed(
        self,
        model: str | Embedder,
        *,
        batch_size: int = 256,
        drop_old: bool = False,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Build ``model``'s vectors beside the current ones, then make it the active model
        (see ``backlog``); ``drop_old`` deletes every other model's vectors afterwards."""
        return backlog.reembed(
            self, model, batch_size=batch_size, drop_old=drop_old, progress=progress
        )

    def reembed_status(self) -> dict[str, Any] | None:
        return backlog.reembed_status(self.db)
