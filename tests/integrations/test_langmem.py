"""LangMem's memory tools on CtxbaseStore, unchanged: they create, search, update and
delete memories exactly as on LangGraph's InMemoryStore. On every backend, sync and async.

The tools are called directly, as an agent's tool node calls them; no chat model is
needed to drive them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langmem import create_manage_memory_tool, create_search_memory_tool

import ctxbase
from ctxbase.integrations.langgraph import AsyncCtxbaseStore, CtxbaseStore

NAMESPACE = ("memories", "{user_id}")
ADA = {"configurable": {"user_id": "ada"}}
BOB = {"configurable": {"user_id": "bob"}}


def found(answer: Any) -> list[tuple[list[str], str, dict[str, Any]]]:
    """The search tool's answer without scores and timestamps, in key order."""
    rows = json.loads(answer) if isinstance(answer, str) else answer
    return sorted((row["namespace"], row["key"], row["value"]) for row in rows)


def walk(store: BaseStore) -> list[Any]:
    """One user's memories created, found, corrected and forgotten, beside another user's;
    what each step shows, with the memories' keys replaced by their order of creation."""
    manage = create_manage_memory_tool(namespace=NAMESPACE, store=store)
    search = create_search_memory_tool(namespace=NAMESPACE, store=store)
    tea = manage.invoke({"content": "Ada prefers green tea", "action": "create"}, ADA)
    walks = manage.invoke({"content": "Ada walks to work", "action": "create"}, ADA)
    chess = manage.invoke({"content": "Bob likes chess", "action": "create"}, BOB)
    tea_key, walks_key = tea.split()[-1], walks.split()[-1]
    names = {tea_key: "tea", walks_key: "walks", chess.split()[-1]: "chess"}

    def named(answer: Any) -> list[Any]:
        return sorted((ns, names.get(key, key), value) for ns, key, value in found(answer))

    steps: list[Any] = [tea.replace(tea_key, "tea"), named(search.invoke({"query": "tea"}, ADA))]
    steps.append(named(search.invoke({"query": "chess"}, BOB)))
    updated = manage.invoke(
        {"content": "Ada prefers black coffee", "action": "update", "id": tea_key}, ADA
    )
    steps += [updated.replace(tea_key, "tea"), named(search.invoke({"query": "coffee"}, ADA))]
    deleted = manage.invoke({"action": "delete", "id": walks_key}, ADA)
    steps += [deleted.replace(walks_key, "walks"), named(search.invoke({"query": "work"}, ADA))]
    return steps


def test_the_memory_tools_act_as_on_the_in_memory_store(store: ctxbase.Store) -> None:
    ours = walk(CtxbaseStore(store))
    assert ours == walk(InMemoryStore())
    assert ours[-1] == [(["memories", "ada"], "tea", {"content": "Ada prefers black coffee"})]
    # What the tools wrote is ctxbase's own data: the corrected memory is found by search
    # (its index memory holds the whole value), the replaced text is not.
    hits = store.search("black coffee", kinds=["memory"], mode="text").hits
    assert [json.loads(hit.item.content) for hit in hits] == [
        {"content": "Ada prefers black coffee"}
    ]
    assert store.search("green tea", kinds=["memory"], mode="text").hits == []


def test_the_memory_tools_run_async(store: ctxbase.Store) -> None:
    async def run() -> list[Any]:
        async_store = AsyncCtxbaseStore(ctxbase.AsyncStore(store))
        manage = create_manage_memory_tool(namespace=NAMESPACE, store=async_store)
        search = create_search_memory_tool(namespace=NAMESPACE, store=async_store)
        made = await manage.ainvoke({"content": "Ada prefers green tea", "action": "create"}, ADA)
        key = made.split()[-1]
        await manage.ainvoke(
            {"content": "Ada prefers black coffee", "action": "update", "id": key}, ADA
        )
        after_update = found(await search.ainvoke({"query": "coffee"}, ADA))
        await manage.ainvoke({"action": "delete", "id": key}, ADA)
        return [after_update, found(await search.ainvoke({"query": "coffee"}, ADA))]

    after_update, after_delete = asyncio.run(run())
    assert [value for _, _, value in after_update] == [{"content": "Ada prefers black coffee"}]
    assert after_delete == []
