"""CtxbaseStore against LangGraph's InMemoryStore, and what it adds: TTL, the index as
ctxbase memories, items as state entries. On every backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langgraph.store.base import (
    BaseStore,
    GetOp,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore
from sqlalchemy import select, update

import ctxbase
from ctxbase.db.schema import LangGraphItemMemory, Memory, StateEntry, table
from ctxbase.errors import InvalidInputError
from ctxbase.integrations.langgraph import AsyncCtxbaseStore, CtxbaseStore
from ctxbase.integrations.langgraph import _items as items_module
from ctxbase.integrations.langgraph._paths import decode, encode

USERS = ("users", "ada lovelace")
NOTES = ("users", "ada lovelace", "notes")
OTHER = ("users", "b/c")  # a label holding a slash stays one label
DOCS = ("docs",)
DRAFTS = ("docs", "drafts", "é")

ITEMS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (USERS, "prefs", {"text": "likes green tea", "theme": "dark", "age": 36}),
    (USERS, "job", {"text": "writes programs", "tags": ["math", "engines"], "age": 36}),
    (NOTES, "n1", {"text": "the engine needs cards", "meta": {"kind": "note", "n": 1}}),
    (NOTES, "n.2", {"text": "notes on Bernoulli numbers", "meta": {"kind": "idea", "n": 2}}),
    (OTHER, "", {"text": "an empty key", "theme": "light", "age": 20}),
    (DOCS, "guide", {"text": "python tutorial", "score": 4.5, "draft": False}),
    (DOCS, "faq", {"text": "questions people ask", "score": 2, "draft": True}),
    (DRAFTS, "x y", {"text": "unfinished thoughts", "score": 3, "tags": ["a", "b"]}),
]

SEARCHES: list[dict[str, Any]] = [
    {"namespace_prefix": ()},
    {"namespace_prefix": ("users",)},
    {"namespace_prefix": USERS},
    {"namespace_prefix": ("docs",), "filter": {"draft": False}},
    {"namespace_prefix": (), "filter": {"theme": "dark"}},
    {"namespace_prefix": (), "filter": {"meta": {"kind": "note"}}},
    {"namespace_prefix": (), "filter": {"tags": ["a", "b"]}},
    {"namespace_prefix": (), "filter": {"tags": ["b", "a"]}},
    {"namespace_prefix": ("docs",), "filter": {"score": {"$gt": 2}}},
    {"namespace_prefix": ("docs",), "filter": {"score": {"$gte": 2, "$lt": 4}}},
    {"namespace_prefix": ("docs",), "filter": {"score": {"$lte": 3}}},
    {"namespace_prefix": ("users",), "filter": {"age": {"$ne": 36}}},
    {"namespace_prefix": ("users",), "filter": {"age": {"$eq": 36}}},
    {"namespace_prefix": (), "query": "green tea"},
    {"namespace_prefix": ("users",), "query": "engines", "filter": {"age": 36}},
    {"namespace_prefix": ("docs", "drafts"), "query": "thoughts"},
    {"namespace_prefix": ("nobody",), "query": "anything"},
]

LISTINGS: list[dict[str, Any]] = [
    {},
    {"prefix": ("users",)},
    {"prefix": ("users", "*")},
    {"suffix": ("notes",)},
    {"suffix": ("*",), "max_depth": 1},
    {"prefix": ("users",), "max_depth": 2},
    {"prefix": ("docs",), "suffix": ("é",)},
    {"max_depth": 2, "limit": 2, "offset": 1},
    {"prefix": ("nobody",)},
]


def constant_embedding(texts: list[str]) -> list[list[float]]:
    return [[1.0, 0.0, 0.0] for _ in texts]


@pytest.fixture
def pair(store: ctxbase.Store) -> Iterator[tuple[CtxbaseStore, InMemoryStore]]:
    reference = InMemoryStore(index={"dims": 3, "embed": constant_embedding, "fields": ["text"]})
    yield CtxbaseStore(store, index={"fields": ["text"]}), reference


def items(found: Any) -> Any:
    """Results without timestamps (and without order, for a list of items, nor of keys in
    a value: PostgreSQL's jsonb orders them its own way)."""
    if found is None or isinstance(found, tuple):  # nothing, or a namespace
        return found
    if isinstance(found, list):
        return sorted(json.dumps(items(item), sort_keys=True) for item in found)
    return (tuple(found.namespace), found.key, found.value)


def both(pair: tuple[CtxbaseStore, InMemoryStore], op: Any) -> tuple[Any, Any]:
    ours, reference = pair
    return ours.batch([op])[0], reference.batch([op])[0]


def listings(reference: InMemoryStore, op: ListNamespacesOp) -> Any:
    """InMemoryStore keeps a namespace once read or emptied (a dict it fills on access);
    a store of rows lists those holding items, as PostgreSQL's and ours do."""
    for namespace in [ns for ns, held in reference._data.items() if not held]:
        del reference._data[namespace]
    return reference.batch([op])[0]


def check_same(pair: tuple[CtxbaseStore, InMemoryStore]) -> None:
    ours, reference = pair
    for namespace, key, _ in ITEMS:
        got, expected = both(pair, GetOp(namespace, key))
        assert items(got) == items(expected), (namespace, key)
    for search in SEARCHES:
        op = SearchOp(**{"limit": 100, **search})
        got, expected = both(pair, op)
        assert items(got) == items(expected), search
        for limit, offset in ((2, 0), (3, 1), (100, 50)):
            small = op._replace(limit=limit, offset=offset)
            got, expected = both(pair, small)
            assert len(got) == len(expected), (search, limit, offset)
    for listing in LISTINGS:
        conditions = []
        if "prefix" in listing:
            conditions.append(MatchCondition("prefix", listing["prefix"]))
        if "suffix" in listing:
            conditions.append(MatchCondition("suffix", listing["suffix"]))
        op = ListNamespacesOp(
            match_conditions=tuple(conditions),
            max_depth=listing.get("max_depth"),
            limit=listing.get("limit", 100),
            offset=listing.get("offset", 0),
        )
        assert ours.batch([op])[0] == listings(reference, op), listing


def test_same_results_as_in_memory_store(pair: tuple[CtxbaseStore, InMemoryStore]) -> None:
    ours, reference = pair
    for namespace, key, value in ITEMS:
        for store in (ours, reference):
            store.put(namespace, key, value)
    check_same(pair)

    # updates, an unindexed put, deletes: then everything again
    changes: list[PutOp] = [
        PutOp(USERS, "prefs", {"text": "likes black coffee", "theme": "light", "age": 37}),
        PutOp(DOCS, "faq", {"text": "answers", "score": 5, "draft": False}, index=False),
        PutOp(NOTES, "n1", None),
        PutOp(OTHER, "", None),
        PutOp(DRAFTS, "fresh", {"text": "a new draft", "score": 1}),
    ]
    for change in changes:
        both(pair, change)
    check_same(pair)


def test_a_batch_reads_before_it_writes(pair: tuple[CtxbaseStore, InMemoryStore]) -> None:
    ours, reference = pair
    ops = [
        PutOp(DOCS, "a", {"text": "first"}),
        GetOp(DOCS, "a"),
        PutOp(DOCS, "a", {"text": "second"}),
        SearchOp(DOCS),
    ]
    assert [items(r) for r in ours.batch(ops)] == [items(r) for r in reference.batch(ops)]
    assert items(ours.get(DOCS, "a")) == items(reference.get(DOCS, "a"))
    assert ours.list_namespaces() == reference.list_namespaces() == [DOCS]


def test_items_are_state_entries_and_their_index_memories(store: ctxbase.Store) -> None:
    langgraph = CtxbaseStore(store)
    langgraph.put(USERS, "prefs", {"text": "likes green tea"})
    entry = store.state.get("prefs", namespace="langgraph/users/ada.20lovelace")
    assert entry.value == {"text": "likes green tea"}
    memories = store.memories.list().items
    assert [m.content for m in memories] == ['{"text": "likes green tea"}']
    assert memories[0].metadata["langgraph"] == {
        "namespace": list(USERS),
        "key": "prefs",
        "field": "$",
    }
    # ctxbase's own search (what MCP's recall runs) finds what an agent stored
    hits = store.search("green tea", kinds=["memory"]).hits
    assert [hit.id for hit in hits] == [memories[0].id]

    # the same text keeps its memory; another text replaces it; a delete removes both
    langgraph.put(USERS, "prefs", {"text": "likes green tea"})
    assert [m.id for m in store.memories.list().items] == [memories[0].id]
    langgraph.put(USERS, "prefs", {"text": "likes black coffee"})
    assert [m.content for m in store.memories.list().items] == ['{"text": "likes black coffee"}']
    langgraph.delete(USERS, "prefs")
    assert store.memories.list().items == []
    assert store.state.list().items == []
    with store.db.connect() as connection:
        assert connection.execute(select(table(LangGraphItemMemory))).all() == []


def test_fields_index_each_text_and_an_item_ranks_by_its_best(store: ctxbase.Store) -> None:
    langgraph = CtxbaseStore(store, index={"fields": ["title", "notes[*]"]})
    langgraph.put(DOCS, "a", {"title": "tea", "notes": ["oolong", "sencha"], "n": 1})
    langgraph.put(DOCS, "b", {"title": "coffee", "notes": ["espresso"], "n": 2})
    langgraph.put(DOCS, "c", {"title": "sencha", "notes": []}, index=["title"])
    contents = sorted(m.content for m in store.memories.list().items)
    assert contents == ["coffee", "espresso", "oolong", "sencha", "sencha", "tea"]
    found = langgraph.search(DOCS, query="sencha")
    assert {item.key for item in found[:2]} == {"a", "c"}
    assert found[0].score is not None and found[0].score >= found[1].score
    assert [i.key for i in langgraph.search(DOCS, query="espresso", limit=1)] == ["b"]


def test_searches_page_through_many_items(
    store: ctxbase.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(items_module, "PAGE", 3)
    langgraph = CtxbaseStore(store, index=False)
    # one batch: one timestamp for all, so the pages are told apart by namespace and key
    langgraph.batch([PutOp(("many", str(i % 3)), f"k{i}", {"i": i}) for i in range(20)])
    odd = langgraph.search(("many",), filter={"i": {"$gte": 5}}, limit=100)
    assert sorted(item.value["i"] for item in odd) == list(range(5, 20))
    everything = [(i.namespace, i.key) for i in langgraph.search(("many",), limit=100)]
    assert len(everything) == len(set(everything)) == 20
    assert len(langgraph.search(("many",), limit=4, offset=17)) == 3


def test_time_to_live(store: ctxbase.Store) -> None:
    langgraph = CtxbaseStore(store, ttl={"default_ttl": 10})
    langgraph.put(USERS, "short", {"text": "short lived"})
    langgraph.put(USERS, "forever", {"text": "stays"}, ttl=None)
    first = expiry(store, "short")
    assert first is not None and expiry(store, "forever") is None
    assert_memory_expiry(store, "short", first)

    # a read extends the time to live by as much again, unless told not to
    move_expiry(store, "short", first - timedelta(minutes=5))
    langgraph.get(USERS, "short", refresh_ttl=False)
    assert expiry(store, "short") == first - timedelta(minutes=5)
    langgraph.search(USERS, query="short lived")
    refreshed = expiry(store, "short")
    assert refreshed is not None and refreshed > first - timedelta(seconds=1)
    assert_memory_expiry(store, "short", refreshed)
    updated = langgraph.get(USERS, "short")
    assert updated is not None and updated.updated_at == updated.created_at

    # expired: gone for every read at once, then swept with its index
    move_expiry(store, "short", datetime.now(UTC) - timedelta(seconds=1))
    assert langgraph.get(USERS, "short") is None
    assert [i.key for i in langgraph.search(USERS)] == ["forever"]
    assert [i.key for i in langgraph.search(USERS, query="short lived")] == ["forever"]
    assert langgraph.sweep_ttl() == 1
    assert [m.content for m in store.memories.list().items] == ['{"text": "stays"}']

    quiet = CtxbaseStore(store, ttl={"refresh_on_read": False})
    quiet.put(USERS, "kept", {"text": "read often"}, ttl=1)
    before = expiry(store, "kept")
    quiet.get(USERS, "kept")
    assert expiry(store, "kept") == before


def expiry(store: ctxbase.Store, key: str) -> datetime | None:
    entries = table(StateEntry)
    with store.db.connect() as connection:
        return connection.execute(
            select(entries.c.expires_at).where(entries.c.key == key)
        ).scalar_one()


def move_expiry(store: ctxbase.Store, key: str, when: datetime) -> None:
    entries = table(StateEntry)
    with store.db.connect(write=True) as connection:
        connection.execute(
            update(entries)
            .where(entries.c.key == key)
            .values(expires_at=when, updated_at=entries.c.updated_at)
        )


def assert_memory_expiry(store: ctxbase.Store, key: str, when: datetime) -> None:
    entries, links, memories = table(StateEntry), table(LangGraphItemMemory), table(Memory)
    with store.db.connect() as connection:
        found = connection.execute(
            select(memories.c.expires_at)
            .join(links, links.c.memory_id == memories.c.id)
            .join(entries, entries.c.id == links.c.state_entry_id)
            .where(entries.c.key == key)
        ).scalar_one()
    assert found == when


def test_async_store_over_an_async_store(store: ctxbase.Store) -> None:
    async def run() -> None:
        langgraph = AsyncCtxbaseStore(ctxbase.AsyncStore(store))
        await langgraph.aput(DOCS, "a", {"text": "asynchronous tea"})
        item = await langgraph.aget(DOCS, "a")
        assert item is not None and item.value == {"text": "asynchronous tea"}
        assert [i.key for i in await langgraph.asearch(DOCS, query="tea")] == ["a"]
        assert await langgraph.alist_namespaces() == [DOCS]
        await langgraph.adelete(DOCS, "a")
        assert await langgraph.aget(DOCS, "a") is None

    asyncio.run(run())


def test_projects_and_roots_keep_items_apart(store: ctxbase.Store) -> None:
    store.projects.create("second", name="Second")
    default, second = CtxbaseStore(store), CtxbaseStore(store, project="second")
    elsewhere = CtxbaseStore(store, namespace="agents/x")
    default.put(DOCS, "a", {"text": "default's"})
    for other in (second, elsewhere):
        assert other.get(DOCS, "a") is None
        assert other.search((), query="default's") == []
        assert other.list_namespaces() == []


def test_bad_input_is_refused(store: ctxbase.Store) -> None:
    langgraph: BaseStore = CtxbaseStore(store)
    with pytest.raises(InvalidInputError, match="embedder"):
        CtxbaseStore(store, index={"dims": 3, "embed": constant_embedding})  # type: ignore[typeddict-item]
    with pytest.raises(InvalidInputError, match="operator"):
        langgraph.put(DOCS, "a", {"n": 1})
        langgraph.search(DOCS, filter={"n": {"$near": 1}})
    with pytest.raises(InvalidInputError, match="too long"):
        langgraph.put(("x" * 600,), "a", {})
    with pytest.raises(InvalidInputError):
        langgraph.put(DOCS, "nul", {"text": "a\x00b"})
    with pytest.raises(ValueError, match="period"):
        langgraph.batch([GetOp(("a.b",), "k")])


def test_from_url_closes_what_it_opened(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'agent.db'}"
    with CtxbaseStore.from_url(url, embedder="hash:64") as langgraph:
        langgraph.setup()  # for code written for LangGraph's stores: a no-op here
        langgraph.put(DOCS, "a", {"text": "kept"})
    with CtxbaseStore.from_url(url, embedder="hash:64") as langgraph:
        assert langgraph.get(DOCS, "a") is not None


@pytest.mark.parametrize(
    "text", ["plain", "", "a b", "a/b", "a.b", "é✓", "=.2E", "x" * 40, "\t\n", "%_"]
)
def test_labels_and_keys_encode_reversibly(text: str) -> None:
    encoded = encode(text)
    assert decode(encoded) == text
    assert all(c.isascii() and (c.isalnum() or c in "_:@+=-.") for c in encoded)
