"""The asyncio facade: every Store method as a coroutine.

The Store is synchronous (SQLAlchemy engines, psycopg and sqlite3 connections); the
facade runs each call in a worker thread with ``asyncio.to_thread`` so an event loop
never blocks on the database. Records, errors and arguments are the Store's own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from ctxbase.db.diagnostics import ConnectionReport
from ctxbase.records import SearchResult
from ctxbase.store.store import Store

SUB_APIS = ("projects", "conversations", "messages", "contexts", "memories", "state")


class AsyncDomain:
    """One Store sub-API whose public methods return awaitables."""

    def __init__(self, domain: Any) -> None:
        self._domain = domain

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._domain, name)
        if name.startswith("_") or not callable(method):
            raise AttributeError(name)

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call


class AsyncStore:
    """``await store.memories.add(...)``: the Store API for asyncio applications."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        for name in SUB_APIS:
            setattr(self, name, AsyncDomain(getattr(store, name)))

    async def check_connection(self) -> ConnectionReport:
        return await asyncio.to_thread(self.sync.check_connection)

    async def search(self, query: str, **options: Any) -> SearchResult:
        return await asyncio.to_thread(self.sync.search, query, **options)

    async def prune(self) -> dict[str, int]:
        return await asyncio.to_thread(self.sync.prune)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def __getattr__(self, name: str) -> AsyncDomain:  # for type checkers: set in __init__
        raise AttributeError(name)


async def open_async(url: str | None = None, **options: Any) -> AsyncStore:
    """Like :func:`ctxbase.open`, for asyncio: ``store = await ctxbase.open_async(url)``."""
    return AsyncStore(await asyncio.to_thread(Store, url, **options))
