"""Vectors for what the store holds: computed on write, cached by content, backfilled.

Vectors are computed *before* the write transaction, then inserted in the same transaction
as their items. Identical text is embedded once per model: vectors are reused from an
in-process cache, then from the ``embeddings`` table by content hash. When the provider
fails, the items are stored anyway and stay pending; :meth:`Embeddings.backfill`
(``ctxbase embed``) fills them in.

One module per job: ``service`` (``store.embeddings``, vectors on write), ``vectors``
(computing and reusing them), ``turns`` (what a message is embedded from: itself after
the turns before it), ``models`` (the database's active model), ``backlog``
(items still without a vector: backfill, and re-embedding with another model).
"""

from ctxbase.store.embedding.models import UNSET as _UNSET
from ctxbase.store.embedding.service import Embeddings
from ctxbase.store.embedding.vectors import KIND_TABLES, Vectors, embeddings_table, text_hash

__all__ = ["KIND_TABLES", "_UNSET", "Embeddings", "Vectors", "embeddings_table", "text_hash"]
