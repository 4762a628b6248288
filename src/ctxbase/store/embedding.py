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
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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
    StoreSetting,
    new_id,
    table,
    utcnow,
)
from ctxbase.embeddings import Embedder, EmbeddingError, embedder_from_spec
from ctxbase.errors import CtxbaseError, InvalidInputError

if TYPE_CHECKING:
    from ctxbase.store.store import Store

log = logging.getLogger("ctxbase.embeddings")

embeddings_table = table(Embedding)
e = embeddings_table.c
KIND_TABLES = {"message": table(Message), "context": table(ContextUnit), "memory": table(Memory)}
settings_table = table(StoreSetting)
ACTIVE_MODEL = "embedding.active_model"
REEMBED_JOB = "embedding.reembed"
ACTIVE_MODEL_TTL_SECONDS = 5.0
_CACHE_SIZE = 20_000
_UNSET: Any = object()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Vectors:
    """Vectors computed for some texts, and the model that made them (None: not embedded)."""

    model: str | None
    values: list[np.ndarray | None]


class Embeddings:
    """``store.embeddings``: the active embedder, vectors on write, and the backlog."""

    def __init__(self, store: Store, embedder: Embedder | None = _UNSET) -> None:
        self._store = store
        self._db = store.db
        self._explicit = embedder  # a provider passed in code always wins
        self._configured: Embedder | None = _UNSET
        self._providers: dict[str, Embedder | None] = {}
        self._active: tuple[float, str | None] | None = None
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder | None:
        """The provider of the active model.

        A provider passed in code is used as is. Otherwise the database's active model
        (which ``reembed`` switches, for every process) is used, built from its spec with
        this process's provider settings; the ``embedder`` setting only names the model a
        new database starts with, and a mismatch is logged once.
        """
        if self._explicit is not _UNSET:
            return self._explicit
        configured = self._configured_embedder()
        active = self.active_model()
        if active is None or (configured is not None and active == configured.name):
            return configured
        if active not in self._providers:
            try:
                self._providers[active] = self._build(active)
            except CtxbaseError as error:
                log.warning(
                    "Cannot build the store's active model %r (%s); using %r",
                    active,
                    error.message,
                    configured and configured.name,
                )
                self._providers[active] = configured
            if configured is not None:
                log.warning(
                    "This store's vectors are of model %r, not the configured %r: searches "
                    "use %r. Run `ctxbase reembed --model %s` to switch.",
                    active,
                    configured.name,
                    active,
                    configured.name,
                )
        return self._providers[active]

    @property
    def model(self) -> str | None:
        """Name of the model whose vectors searches use, None without an embedder."""
        embedder = self.embedder
        return embedder.name if embedder is not None else None

    def _configured_embedder(self) -> Embedder | None:
        if self._configured is _UNSET:
            self._configured = self._build(self._store.settings.embedder)
        return self._configured

    def _build(self, spec: str) -> Embedder | None:
        settings = self._store.settings
        key = settings.embedder_api_key
        return embedder_from_spec(
            spec,
            base_url=settings.embedder_base_url,
            api_key=key.get_secret_value() if key else None,
            dimensions=settings.embedder_dimensions,
            batch_size=settings.embedder_batch_size,
            timeout=settings.embedder_timeout,
            max_retries=settings.embedder_max_retries,
        )

    # --- the database's active model ---

    def active_model(self) -> str | None:
        """The model recorded in the database (re-read every few seconds)."""
        now = time.monotonic()
        if self._active is None or now - self._active[0] > ACTIVE_MODEL_TTL_SECONDS:
            with self._db.read() as connection:
                value = connection.execute(
                    select(settings_table.c.value).where(settings_table.c.key == ACTIVE_MODEL)
                ).scalar()
            self._active = (now, value)
        return self._active[1]

    def record_active_model(self) -> None:
        """On open: a database without an active model takes this process's model."""
        provider = self._explicit if self._explicit is not _UNSET else (self._configured_embedder())
        if provider is None or self.active_model() is not None:
            return
        self._set_setting(ACTIVE_MODEL, provider.name, only_if_absent=True)
        self._active = None

    def _set_setting(self, key: str, value: Any, *, only_if_absent: bool = False) -> None:
        insert = postgres_insert if self._db.backend == "postgresql" else sqlite_insert
        statement = insert(settings_table).values(key=key, value=value, updated_at=utcnow())
        if only_if_absent:
            statement = statement.on_conflict_do_nothing()
        else:
            statement = statement.on_conflict_do_update(
                index_elements=["key"], set_={"value": value, "updated_at": utcnow()}
            )
        with self._db.connect(write=True) as connection:
            connection.execute(statement)

    # --- computing ---

    def vectors_for(self, kind: str, texts: list[str]) -> Vectors:
        """One vector per text, or None for each when the kind is not embedded on write
        or the provider fails (those items stay pending). Call it before the write
        transaction: it may call the model and read the database."""
        embedder = self.embedder
        if not texts or embedder is None or kind not in self._store.settings.embed_on_write:
            return Vectors(None, [None] * len(texts))
        try:
            return Vectors(embedder.name, list(self.embed(texts, embedder)))
        except EmbeddingError as error:
            log.warning("Embedding failed; %d %s(s) stored and queued: %s", len(texts), kind, error)
            return Vectors(None, [None] * len(texts))

    def embed(
        self, texts: list[str], embedder: Embedder | None = None, *, remembered_only: bool = False
    ) -> list[np.ndarray]:
        """Vectors of ``texts`` (active model unless told), reusing every known vector:
        from this process's cache, then (unless ``remembered_only``, as for queries, which
        are rarely stored) from the table."""
        embedder = embedder or self.embedder
        if embedder is None:
            raise EmbeddingError("No embedder is configured (CTXBASE_EMBEDDER=none)")
        hashes = [text_hash(t) for t in texts]
        known = self._known(embedder.name, set(hashes), use_table=not remembered_only)
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        if missing:
            matrix = embedder.embed(list(missing.values()))
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
        items: Iterable[tuple[uuid.UUID, str]],
        vectors: Vectors,
    ) -> list[dict[str, Any]]:
        """Embedding rows for the (item id, text) pairs, one per vector computed."""
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

    def pending(
        self, kinds: Iterable[str] | None = None, *, model: str | None = None
    ) -> dict[str, int]:
        """Items without a vector of ``model`` (the active one), per kind (all projects)."""
        model = model or self.model
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
        """Embed every item still without a vector of the active model; returns how many."""
        embedder = self.embedder
        if embedder is None:
            return 0
        return self._fill(
            embedder, list(kinds or self._store.settings.embed_on_write), batch_size, progress
        )

    def reembed(
        self,
        model: str | Embedder,
        *,
        batch_size: int = 256,
        drop_old: bool = False,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, Any]:
        """Build ``model``'s vectors beside the current ones, then make it the active model.

        Searches keep using the current model until every item has a vector of the new
        one; a run that stops half-way resumes where it stopped when started again (done
        items are skipped). ``drop_old`` deletes every other model's vectors afterwards.
        """
        target = self._build(model) if isinstance(model, str) else model
        if target is None:
            raise InvalidInputError("Re-embedding needs a model, not `none`")
        kinds = list(self._store.settings.embed_on_write)
        total = sum(self.pending(kinds, model=target.name).values())
        job: dict[str, Any] = {
            "model": target.name,
            "status": "running",
            "total": total,
            "done": 0,
            "started_at": utcnow().isoformat(),
            "finished_at": None,
            "error": None,
        }
        self._set_setting(REEMBED_JOB, job)

        def advance(kind: str, count: int) -> None:
            job["done"] += count
            self._set_setting(REEMBED_JOB, job)
            if progress:
                progress(kind, count)

        try:
            self._fill(target, kinds, batch_size, advance)
            self._store.search.prepare_index(target.name, target.dimensions)
            self._set_setting(ACTIVE_MODEL, target.name)
            self._active = None
            self._providers[target.name] = target  # no need to build it again
            if drop_old:
                with self._db.connect(write=True) as connection:
                    connection.execute(delete(embeddings_table).where(e.model != target.name))
        except Exception as error:
            job.update(status="failed", error=str(error), finished_at=utcnow().isoformat())
            self._set_setting(REEMBED_JOB, job)
            raise
        job.update(status="completed", finished_at=utcnow().isoformat())
        self._set_setting(REEMBED_JOB, job)
        return job

    def reembed_status(self) -> dict[str, Any] | None:
        with self._db.connect() as connection:
            value: dict[str, Any] | None = connection.execute(
                select(settings_table.c.value).where(settings_table.c.key == REEMBED_JOB)
            ).scalar()
        return value

    def _fill(
        self,
        embedder: Embedder,
        kinds: Sequence[str],
        batch_size: int,
        progress: Callable[[str, int], None] | None,
    ) -> int:
        done = 0
        for kind in kinds:
            while True:
                with self._db.connect() as connection:
                    batch = connection.execute(
                        self._pending_query(kind, embedder.name).limit(batch_size)
                    ).fetchall()
                if not batch:
                    break
                vectors = self.embed([row.content for row in batch], embedder)
                with self._db.connect(write=True) as connection:
                    for row, vector in zip(batch, vectors, strict=True):
                        made = Vectors(embedder.name, [vector])
                        self.insert(
                            connection,
                            self.rows(kind, row.project_id, [(row.id, row.content)], made),
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
