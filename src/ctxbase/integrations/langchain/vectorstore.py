"""A LangChain vector store over ctxbase context units or memories.

Texts are embedded by the store's own embedder (the ``embedder`` setting), so there is no
LangChain ``Embeddings`` to pass; :attr:`CtxbaseVectorStore.embeddings` exposes that
model to LangChain. Searches are ctxbase searches of one kind (vector mode unless told),
so their filters are ctxbase's: a filter key naming a search filter (``source_type``,
``user_id``, ``agent_id``, ``memory_type``, ``conversation_id``, ``created_after``,
``created_before``) is that filter, every other key a metadata pair to match.

- ``kind="context"``: a document's id is its context unit's *name*. Adding a text under an
  existing id stores a new version (the old one is kept, superseded, and no longer
  found); deleting an id deletes every version.
- ``kind="memory"``: a document's id is the memory's id. ctxbase assigns it: adding with
  the id of an existing memory updates that memory; any other id is refused.

``similarity_search_with_score`` gives ctxbase's scores (for vector mode the similarity of
the chosen ``distance``); relevance scores are cosine similarities clipped to [0, 1].
Maximal marginal relevance needs the vectors, hence a :class:`ctxbase.Store` (the
library), not a :class:`ctxbase.Client`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from ctxbase.db.schema import new_id
from ctxbase.errors import NotFoundError
from ctxbase.records import SearchFilters

Kind = Literal["context", "memory"]
_FILTERS = frozenset(SearchFilters.model_fields) - {"metadata"}
_PAGE = 1000


class CtxbaseEmbeddings(Embeddings):
    """The store's embedding model as LangChain ``Embeddings`` (vectors are reused from
    the store when it already holds them)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [vector.tolist() for vector in self.store.embeddings.embed(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        vector = self.store.embeddings.embed([text], remembered_only=True)[0]
        return list(vector.tolist())


class CtxbaseVectorStore(VectorStore):
    """Documents as ctxbase context units (``kind="context"``) or memories.

    ``store``: a :class:`ctxbase.Store` or :class:`ctxbase.Client`. ``mode``: ``vector``
    (default), ``hybrid`` or ``text`` search. ``source_type`` names the context units
    added; ``memory_type``, ``user_id`` and ``agent_id`` are given to memories added.
    """

    def __init__(
        self,
        store: Any,
        *,
        kind: Kind = "context",
        project: str = "default",
        mode: Literal["vector", "hybrid", "text"] = "vector",
        distance: Literal["cosine", "l2", "ip"] = "cosine",
        source_type: str = "document",
        memory_type: str = "semantic",
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> None:
        if kind not in ("context", "memory"):
            raise ValueError("kind must be 'context' or 'memory'")
        self.store = store
        self.kind: Kind = kind
        self.project = project
        self.mode = mode
        self.distance = distance
        self.source_type = source_type
        self.memory_defaults = {
            "memory_type": memory_type,
            "user_id": user_id,
            "agent_id": agent_id,
        }

    @property
    def embeddings(self) -> Embeddings | None:
        return CtxbaseEmbeddings(self.store) if hasattr(self.store, "embeddings") else None

    # --- writing ---

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        _no_options("add_texts", kwargs)
        texts = list(texts)
        metadatas = list(metadatas) if metadatas is not None else [{} for _ in texts]
        names: list[str | None] = list(ids) if ids is not None else [None] * len(texts)
        if not len(texts) == len(metadatas) == len(names):
            raise ValueError("texts, metadatas and ids must be as many")
        add = self._add_unit if self.kind == "context" else self._add_memory
        return [
            add(text, dict(metadata or {}), name)
            for text, metadata, name in zip(texts, metadatas, names, strict=True)
        ]

    def _add_unit(self, text: str, metadata: dict[str, Any], name: str | None) -> str:
        name = name or str(new_id())
        self.store.contexts.add(
            name, text, source_type=self.source_type, metadata=metadata, project=self.project
        )
        return name

    def _add_memory(self, text: str, metadata: dict[str, Any], memory_id: str | None) -> str:
        if memory_id is None:
            given = {k: v for k, v in self.memory_defaults.items() if v is not None}
            memory = self.store.memories.add(text, metadata=metadata, project=self.project, **given)
            return str(memory.id)
        try:
            memory = self.store.memories.update(
                memory_id, content=text, metadata=metadata, project=self.project
            )
        except NotFoundError:
            raise ValueError(
                f"No memory {memory_id!r}: ctxbase assigns memories' ids, add without one"
            ) from None
        return str(memory.id)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete these documents (absent ones are skipped), or every one with no ids."""
        _no_options("delete", kwargs)
        for ident in self._all_ids() if ids is None else ids:
            try:
                if self.kind == "context":
                    unit = self.store.contexts.get_latest(ident, project=self.project)
                    self.store.contexts.delete(unit.id, project=self.project)
                else:
                    self.store.memories.delete(ident, project=self.project)
            except NotFoundError:
                continue
        return True

    def _all_ids(self) -> list[str]:
        found: list[str] = []
        cursor = None
        while True:
            if self.kind == "context":
                page = self.store.contexts.list(limit=_PAGE, cursor=cursor, project=self.project)
                found.extend(unit.name for unit in page.items)
            else:
                page = self.store.memories.list(limit=_PAGE, cursor=cursor, project=self.project)
                found.extend(str(memory.id) for memory in page.items)
            cursor = page.next_cursor
            if cursor is None:
                return found

    # --- reading ---

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        documents = []
        for ident in dict.fromkeys(ids):
            try:
                if self.kind == "context":
                    item = self.store.contexts.get_latest(ident, project=self.project)
                else:
                    item = self.store.memories.get(ident, project=self.project)
            except NotFoundError:
                continue
            documents.append(self._document(item))
        return documents

    def _document(self, item: Any) -> Document:
        ident = item.name if self.kind == "context" else str(item.id)
        return Document(id=ident, page_content=item.content, metadata=dict(item.metadata))

    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        found = self.similarity_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _score in found]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents and ctxbase scores, best first; ``threshold=`` drops weaker ones."""
        threshold = kwargs.pop("threshold", None)
        _no_options("similarity_search_with_score", kwargs)
        hits = self._search(query, k, filter, threshold)
        return [(self._document(hit.item), hit.score) for hit in hits]

    def _search(
        self,
        query: str,
        k: int,
        filter: dict[str, Any] | None,
        threshold: float | None = None,
        mode: str | None = None,
    ) -> list[Any]:
        mode = mode or self.mode
        if threshold is None and mode == "vector":
            threshold = -1.0e9  # every hit: k bounds the result, not ctxbase's default
        result = self.store.search(
            query,
            kinds=[self.kind],
            mode=mode,
            k=k,
            threshold=threshold,
            filters=_filters(filter),
            distance=self.distance,
            project=self.project,
        )
        return list(result.hits)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return lambda score: min(1.0, max(0.0, score))

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        filter = kwargs.pop("filter", None)
        _no_options("similarity_search_with_relevance_scores", kwargs)
        hits = self._search(query, k, filter, mode="vector")
        score = self._select_relevance_score_fn()
        return [(self._document(hit.item), score(hit.score)) for hit in hits]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents among the ``fetch_k`` nearest, each as relevant to the query and
        as unlike those chosen before it as ``lambda_mult`` weighs (1: relevance only)."""
        _no_options("max_marginal_relevance_search", kwargs)
        if not hasattr(self.store, "embeddings"):
            raise NotImplementedError("MMR needs the vectors: use a ctxbase.Store")
        hits = self._search(query, max(k, fetch_k), filter, mode="vector")
        if not hits:
            return []
        embeddings = self.store.embeddings
        query_vector = np.asarray(embeddings.embed([query], remembered_only=True)[0])
        vectors = [v.tolist() for v in embeddings.embed([hit.item.content for hit in hits])]
        chosen = maximal_marginal_relevance(query_vector, vectors, lambda_mult=lambda_mult, k=k)
        return [self._document(hits[index].item) for index in chosen]

    # --- construction ---

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        store: Any = None,
        **kwargs: Any,
    ) -> CtxbaseVectorStore:
        """A vector store over ``store`` (keyword ``store=``) holding ``texts``;
        ``kwargs`` are the constructor's. ``embedding`` must be None or this store's own
        (:attr:`embeddings`): ctxbase embeds with its configured model."""
        if store is None:
            raise ValueError("from_texts needs store=ctxbase.open(...) or a ctxbase.Client")
        if embedding is not None and not isinstance(embedding, CtxbaseEmbeddings):
            raise ValueError(
                "ctxbase embeds with its own model (the `embedder` setting); pass embedding=None"
            )
        vectorstore = cls(store, **kwargs)
        vectorstore.add_texts(texts, metadatas, ids=ids)
        return vectorstore


def _filters(filter: dict[str, Any] | None) -> dict[str, Any] | None:
    """ctxbase search filters from a LangChain ``filter``: search filters by name, the
    rest as metadata pairs."""
    if not filter:
        return None
    given = {key: value for key, value in filter.items() if key in _FILTERS}
    metadata = {key: value for key, value in filter.items() if key not in _FILTERS}
    if metadata:
        given["metadata"] = metadata
    return given


def _no_options(method: str, options: dict[str, Any]) -> None:
    if options:
        raise TypeError(f"{method}() got unexpected keyword arguments: {sorted(options)}")
