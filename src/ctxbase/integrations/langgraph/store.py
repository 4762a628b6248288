"""LangGraph's long-term memory store over ctxbase: :class:`CtxbaseStore`.

Items are ctxbase state entries, so they are read and written like any other state (the
REST API, the console) and move with ``ctxbase migrate``. What an item's index fields
hold is a ctxbase memory, embedded by the store's embedder and found by its hybrid
search, so an agent's LangGraph memories are recalled wherever ctxbase memories are (the
MCP server's ``recall`` among them). See ``docs/decisions.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Literal

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from ctxbase.db import migrate
from ctxbase.errors import InvalidInputError
from ctxbase.integrations.langgraph import _paths
from ctxbase.integrations.langgraph._items import Items, Put, prefix_key
from ctxbase.integrations.langgraph._opening import DEFAULT_PROJECT, Opened, project_id
from ctxbase.store.aio import AsyncStore
from ctxbase.store.state import check_namespace
from ctxbase.store.store import Store

#: Where items live in the project's state, unless told: LangGraph reserves this root
#: label, so no namespace an application writes is ever one of its own state entries'.
DEFAULT_ROOT = "langgraph"
#: Hits a natural-language search asks ctxbase's search for, at most (its own limit).
MAX_HITS = 200


class CtxbaseStore(BaseStore):
    """A LangGraph ``BaseStore`` keeping items in a ctxbase store (SQLite or PostgreSQL).

    ``CtxbaseStore(store)`` works in the store's ``project`` (default ``"default"``),
    under the state namespace ``namespace`` (default ``"langgraph"``);
    ``CtxbaseStore.from_url(url)`` opens a store and closes it after its ``with`` or
    ``async with`` block. ``batch`` and ``abatch`` (and everything built on them: ``get``,
    ``put``, ``search``, ``list_namespaces``, … and their async twins) run the same
    code, the async one in a worker thread.

    ``index`` says which fields of a value a natural-language search looks at
    (``{"fields": ["$"]}``, the whole value, unless told; ``False``: none); the
    embedder is the store's own (``ctxbase.open(embedder=...)``), so ``embed`` and
    ``dims`` are not taken. ``ttl`` is LangGraph's ``TTLConfig``: ``default_ttl``
    minutes for new items, ``refresh_on_read`` (default true). An expired item is gone
    for every read at once; ``sweep_ttl()`` (or ``ctxbase prune``) deletes it.
    """

    supports_ttl = True

    def __init__(
        self,
        store: Store | AsyncStore,
        *,
        project: str = DEFAULT_PROJECT,
        index: IndexConfig | Literal[False] | None = None,
        ttl: TTLConfig | None = None,
        namespace: str = DEFAULT_ROOT,
    ) -> None:
        self.store = store.sync if isinstance(store, AsyncStore) else store
        self.project = project
        self.root = check_namespace(namespace)
        if not self.root:
            raise InvalidInputError("The store's namespace must not be the root of the state")
        self.index_config = _index_config(index)
        self.ttl_config = ttl
        self._fields = [
            (path, tokenize_path(path) if path != "$" else path)
            for path in (self.index_config or {}).get("fields") or []
        ]
        self._items = Items(self.store, project_id(self.store, project), self.root)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        project: str = DEFAULT_PROJECT,
        index: IndexConfig | Literal[False] | None = None,
        ttl: TTLConfig | None = None,
        namespace: str = DEFAULT_ROOT,
        **options: Any,
    ) -> Opened[Any]:
        """A store adapter over the store at ``url`` (``options`` as for
        ``ctxbase.open``), for ``with`` or ``async with``; the store is closed at the end
        of the block."""
        return Opened(
            url,
            lambda store: cls(store, project=project, index=index, ttl=ttl, namespace=namespace),
            options,
        )

    def setup(self) -> None:
        """Bring the store's schema to its newest revision (opening a store already does,
        unless ``auto_migrate=False``). Safe to call any number of times."""
        migrate.ensure_schema(self.store.db)

    # --- the batch -----------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops``, reads first, then the writes (the last write of an item wins), as
        LangGraph's stores do; one result per op, in order."""
        ops = list(ops)
        results: list[Result] = [None] * len(ops)
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for i, op in enumerate(ops):
            validate_op_namespace(op)
            if isinstance(op, GetOp):
                results[i] = self._get(op)
            elif isinstance(op, SearchOp):
                results[i] = self._search(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op)
            elif isinstance(op, PutOp):
                puts.pop((tuple(op.namespace), op.key), None)
                puts[(tuple(op.namespace), op.key)] = op
            else:
                raise InvalidInputError(f"Unknown store operation {type(op).__name__}")
        if puts:
            self._items.write([self._put(op) for op in puts.values()])
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    def sweep_ttl(self) -> int:
        """Delete the expired items (and their index); how many went."""
        return self._items.sweep()

    async def asweep_ttl(self) -> int:
        return await asyncio.to_thread(self.sweep_ttl)

    # --- operations ----------------------------------------------------------------------

    def _get(self, op: GetOp) -> Item | None:
        row = self._items.get(
            _paths.state_namespace(self.root, op.namespace), _paths.state_key(op.key)
        )
        if row is None:
            return None
        if self._refreshes(op.refresh_ttl):
            self._items.refresh([row])
        return self._item(row, Item)

    def _search(self, op: SearchOp) -> list[SearchItem]:
        if op.limit <= 0:
            return []
        prefix = _paths.state_namespace(self.root, op.namespace_prefix)
        wanted = op.offset + op.limit
        found: list[tuple[dict[str, Any], float | None]] = []
        if op.query and self.index_config is not None:
            found = self._ranked(op, prefix, wanted)
        if len(found) < wanted:
            ranked = {row["id"] for row, _ in found}
            for page in self._items.scan(prefix):
                for row in page:
                    if row["id"] not in ranked and _paths.matches(row["value"], op.filter):
                        found.append((row, None))
                if len(found) >= wanted:
                    break
        found = found[op.offset : wanted]
        if self._refreshes(op.refresh_ttl):
            self._items.refresh([row for row, _ in found])
        return [self._item(row, SearchItem, score) for row, score in found]

    def _ranked(
        self, op: SearchOp, prefix: str, wanted: int
    ) -> list[tuple[dict[str, Any], float | None]]:
        """Items under ``prefix`` passing the filter, best first by ctxbase's hybrid
        search of their memories (an item's best memory ranks it)."""
        assert op.query is not None
        depth = len(op.namespace_prefix)
        result = self.store.search(
            op.query,
            kinds=["memory"],
            mode="hybrid",
            k=min(MAX_HITS, max(4 * wanted, 20)),
            filters={"metadata": {prefix_key(depth): prefix}},
            project=self.project,
        )
        items = self._items.by_memory([hit.id for hit in result.hits], prefix)
        ranked: list[tuple[dict[str, Any], float | None]] = []
        seen = set()
        for hit in result.hits:
            row = items.get(hit.id)
            if row is None or row["id"] in seen or not _paths.matches(row["value"], op.filter):
                continue
            seen.add(row["id"])
            ranked.append((row, hit.score))
        return ranked

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        conditions = op.match_conditions or ()
        under = _paths.state_namespace(self.root, _paths.fixed_prefix(conditions))
        namespaces = {
            _paths.item_namespace(self.root, path) for path in self._items.namespaces(under)
        }
        chosen = {ns for ns in namespaces if _paths.namespace_matches(ns, conditions)}
        if op.max_depth is not None:
            chosen = {ns[: op.max_depth] for ns in chosen}
        return sorted(chosen)[op.offset : op.offset + op.limit]

    def _put(self, op: PutOp) -> Put:
        namespace = _paths.state_namespace(self.root, op.namespace)
        key = _paths.state_key(op.key)
        if op.value is None:
            return Put(namespace, key, tuple(op.namespace), op.key, None, None, [])
        if op.ttl is not None and op.ttl <= 0:
            raise InvalidInputError("ttl must be a positive number of minutes")
        value = dict(op.value)
        return Put(
            namespace, key, tuple(op.namespace), op.key, value, op.ttl, self._texts(op, value)
        )

    def _texts(self, op: PutOp, value: dict[str, Any]) -> list[tuple[str, str]]:
        """(field, text) pairs of the value to index: the store's fields, or the op's."""
        if op.index is False or self.index_config is None:
            return []
        fields = self._fields
        if op.index is not None:
            fields = [(path, tokenize_path(path)) for path in op.index]
        texts = []
        for path, tokens in fields:
            found = [text for text in get_text_at_path(value, tokens) if text.strip()]
            if len(found) == 1:
                texts.append((path, found[0]))
            else:
                texts += [(f"{path}.{i}", text) for i, text in enumerate(found)]
        return texts

    # --- helpers -------------------------------------------------------------------------

    def _refreshes(self, asked: bool) -> bool:
        return asked and (self.ttl_config or {}).get("refresh_on_read", True)

    def _item(self, row: dict[str, Any], kind: type[Any], score: float | None = None) -> Any:
        fields = {
            "namespace": _paths.item_namespace(self.root, row["namespace"]),
            "key": _paths.decode(row["key"]),
            "value": row["value"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
        return kind(**fields, score=score) if kind is SearchItem else kind(**fields)


class AsyncCtxbaseStore(CtxbaseStore):
    """:class:`CtxbaseStore` for asyncio applications, over a ``Store`` or an
    ``AsyncStore``: ``async with AsyncCtxbaseStore.from_url(url) as store``. Its async
    methods run in worker threads; the sync ones work too."""


def _index_config(index: IndexConfig | Literal[False] | None) -> IndexConfig | None:
    if index is False:
        return None
    config: dict[str, Any] = dict(index or {})
    refused = sorted({"embed", "dims"} & set(config))
    if refused:
        raise InvalidInputError(
            f"The index takes no {' or '.join(refused)}: the store's embedder embeds",
            hint="choose the embedder with ctxbase.open(url, embedder=...) or CTXBASE_EMBEDDER",
        )
    unknown = sorted(set(config) - {"fields"})
    if unknown:
        raise InvalidInputError(f"Unknown index setting(s): {', '.join(unknown)}")
    fields = config.get("fields") or ["$"]
    return IndexConfig(fields=list(fields))
