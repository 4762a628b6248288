"""The asyncio facade: every Store method as a coroutine.

The Store is synchronous (SQLAlchemy engines, psycopg and sqlite3 connections); the
facade runs each call in a worker thread with ``asyncio.to_thread`` so an event loop
never blocks on the database. Records, errors and arguments are the Store's own: each
method of the facade is made from the Store method of the same name and carries its
signature. ``events.stream`` becomes an async iterator, each wait in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ctxbase.api import LIBRARY_ONLY, OPERATIONS
from ctxbase.store.store import Store

#: ``domain -> method names`` the facade carries: the Store's operations and its
#: library-only methods; ``""`` holds the Store's own (``search``, ``prune``, …).
SURFACE: dict[str, tuple[str, ...]] = {}
for _name in [n for n, op in OPERATIONS.items() if op.on != "rest"] + list(LIBRARY_ONLY):
    _domain, _, _method = _name.rpartition(".")
    SURFACE[_domain] = (*SURFACE.get(_domain, ()), _method)
_SYNC_ONLY = {"scoped"}  # builds a view; nothing to await


def _offloaded(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        async def iterate(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            iterator: Iterator[Any] = await asyncio.to_thread(method, *args, **kwargs)
            done = object()
            while (item := await asyncio.to_thread(next, iterator, done)) is not done:
                yield item

        return iterate

    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(method, *args, **kwargs)

    return call


class AsyncDomain:
    """One Store sub-API whose methods return awaitables."""

    def __init__(self, domain: Any, names: tuple[str, ...]) -> None:
        self.sync = domain
        for name in names:
            setattr(self, name, _offloaded(getattr(domain, name)))


class AsyncStore:
    """``await store.memories.add(...)``: the Store API for asyncio applications."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        for domain, names in SURFACE.items():
            if domain:
                setattr(self, domain, AsyncDomain(getattr(store, domain), names))
        for name in SURFACE[""]:
            if name not in _SYNC_ONLY:
                setattr(self, name, _offloaded(getattr(store, name)))

    def scoped(self, scope: Any) -> AsyncStore:
        """A view limited to ``scope``, sharing the store's connections."""
        return AsyncStore(self.sync.scoped(scope))

    @property
    def backend(self) -> str:
        return self.sync.backend

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:  # for type checkers: members are set in __init__
        raise AttributeError(name)


async def open_async(url: str | None = None, **options: Any) -> AsyncStore:
    """Like :func:`ctxbase.open`, for asyncio: ``store = await ctxbase.open_async(url)``."""
    return AsyncStore(await asyncio.to_thread(Store, url, **options))
