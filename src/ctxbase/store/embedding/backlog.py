"""Items still without a vector of a model: counted, filled in, or re-embedded.

An item stored while its provider failed waits here until a backfill (``ctxbase embed``).
Re-embedding fills in another model's vectors beside the current ones, then switches the
active model: searches keep using the current model until every item has a vector of the
new one, and a run that stops half-way resumes where it stopped (done items are skipped).
Its state is recorded in the database, for ``reembed_status`` in any process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, select

from ctxbase.db.database import Database
from ctxbase.db.schema import EMBEDDING_OWNER_COLUMNS, utcnow
from ctxbase.embeddings import Embedder
from ctxbase.errors import InvalidInputError
from ctxbase.store.embedding import turns
from ctxbase.store.embedding.models import read_setting, write_setting
from ctxbase.store.embedding.vectors import KIND_TABLES, Vectors, e, embeddings_table

if TYPE_CHECKING:
    from ctxbase.store.embedding.service import Embeddings

ProgressCallback = Callable[[str, int], None]
REEMBED_JOB = "embedding.reembed"


def count_pending(embeddings: Embeddings, kinds: Iterable[str], model: str) -> dict[str, int]:
    """Items without a vector of ``model``, per kind (all projects)."""
    with embeddings.db.connect() as connection:
        return {
            kind: int(
                connection.execute(
                    select(func.count()).select_from(pending_query(kind, model).subquery())
                ).scalar()
                or 0
            )
            for kind in kinds
        }


#: Told of an item whose text the embedder failed on while others of its batch succeeded.
FailureCallback = Callable[[str, uuid.UUID, Exception], None]


def fill(
    embeddings: Embeddings,
    embedder: Embedder,
    kinds: Iterable[str],
    batch_size: int,
    progress: ProgressCallback | None,
    *,
    skip: Collection[uuid.UUID] = (),
    failed: FailureCallback | None = None,
) -> int:
    """Embed every item of ``kinds`` without a vector of ``embedder``; returns how many.

    Items in ``skip`` are left alone. With ``failed``, a batch the embedder fails on is
    embedded item by item and the run goes on; the items it still fails on are reported
    to ``failed`` when other items of the run went through (the provider works, so the
    item is the trouble). When nothing went through, the provider is down: the error is
    raised as without ``failed``, and no item is blamed."""
    done = 0
    refused: list[tuple[str, uuid.UUID, Exception]] = []
    for kind in kinds:
        left_out = set(skip)
        while True:
            query = pending_query(kind, embedder.name)
            if left_out:
                query = query.where(KIND_TABLES[kind].c.id.not_in(left_out))
            with embeddings.db.connect() as connection:
                batch = connection.execute(query.limit(batch_size)).fetchall()
                texts = _embedding_texts(embeddings, connection, kind, batch)
            if not batch:
                break
            try:
                vectors = embeddings.embed([texts[row.id] for row in batch], embedder)
                embedded = list(zip(batch, vectors, strict=True))
            except Exception:
                if failed is None:
                    raise
                embedded = _one_by_one(embeddings, embedder, kind, batch, texts, refused)
                left_out.update(row.id for row in batch)
            with embeddings.db.connect(write=True) as connection:
                for row, vector in embedded:
                    made = Vectors(embedder.name, [vector])
                    embeddings.insert(
                        connection,
                        embeddings.rows(kind, row.project_id, [(row.id, texts[row.id])], made),
                    )
            done += len(embedded)
            if progress and embedded:
                progress(kind, len(embedded))
    if refused and failed is not None:
        if done == 0:
            raise refused[0][2]  # nothing went through: the provider, not an item
        for kind, item_id, error in refused:
            failed(kind, item_id, error)
    return done


def _embedding_texts(
    embeddings: Embeddings, connection: Connection, kind: str, batch: Sequence[Any]
) -> dict[uuid.UUID, str]:
    """What each item is embedded from: its content, or a message after its turns."""
    window = embeddings.store.settings.embed_message_context if kind == "message" else 0
    if not window:
        return {row.id: row.content for row in batch}
    return turns.stored_texts(connection, [row.id for row in batch], window)


def _one_by_one(
    embeddings: Embeddings,
    embedder: Embedder,
    kind: str,
    batch: Sequence[Any],
    texts: dict[uuid.UUID, str],
    refused: list[tuple[str, uuid.UUID, Exception]],
) -> list[tuple[Any, Any]]:
    embedded: list[tuple[Any, Any]] = []
    for row in batch:
        try:
            embedded.append((row, embeddings.embed([texts[row.id]], embedder)[0]))
        except Exception as error:
            refused.append((kind, row.id, error))
    return embedded


def pending_query(kind: str, model: str) -> Any:
    items = KIND_TABLES[kind]
    owner = embeddings_table.c[EMBEDDING_OWNER_COLUMNS[kind]]
    return (
        select(items.c.id, items.c.project_id, items.c.content)
        .outerjoin(embeddings_table, and_(owner == items.c.id, e.model == model))
        .where(e.id.is_(None))
        .order_by(items.c.id)
    )


def reembed(
    embeddings: Embeddings,
    model: str | Embedder,
    *,
    batch_size: int,
    drop_old: bool,
    progress: ProgressCallback | None,
) -> dict[str, Any]:
    """Build ``model``'s vectors, make it the active model, and return the run's record;
    ``drop_old`` deletes every other model's vectors afterwards."""
    db = embeddings.db
    target = embeddings.models.build(model) if isinstance(model, str) else model
    if target is None:
        raise InvalidInputError("Re-embedding needs a model, not `none`")
    kinds = list(embeddings.store.settings.embed_on_write)
    total = sum(count_pending(embeddings, kinds, target.name).values())
    job: dict[str, Any] = {
        "model": target.name,
        "status": "running",
        "total": total,
        "done": 0,
        "started_at": utcnow().isoformat(),
        "finished_at": None,
        "error": None,
    }
    write_setting(db, REEMBED_JOB, job)

    def advance(kind: str, count: int) -> None:
        job["done"] += count
        write_setting(db, REEMBED_JOB, job)
        if progress:
            progress(kind, count)

    try:
        fill(embeddings, target, kinds, batch_size, advance)
        embeddings.store.search.prepare_index(target.name, target.dimensions)
        embeddings.models.switch(target)
        if drop_old:
            with db.connect(write=True) as connection:
                connection.execute(delete(embeddings_table).where(e.model != target.name))
    except Exception as error:
        job.update(status="failed", error=str(error), finished_at=utcnow().isoformat())
        write_setting(db, REEMBED_JOB, job)
        raise
    job.update(status="completed", finished_at=utcnow().isoformat())
    write_setting(db, REEMBED_JOB, job)
    return job


def reembed_status(db: Database) -> dict[str, Any] | None:
    """The record of the last re-embedding run, if any."""
    status: dict[str, Any] | None = read_setting(db, REEMBED_JOB)
    return status
