"""What the LangGraph adapters share: the project they work in, and ``from_url``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ctxbase.store.base import DEFAULT_PROJECT
from ctxbase.store.store import Store
from ctxbase.store.store import open as open_store

__all__ = ["DEFAULT_PROJECT", "Opened", "project_id"]

T = TypeVar("T")


def project_id(store: Store, project: str) -> uuid.UUID:
    """The id of ``project`` as ``store`` sees it (NotFoundError when it cannot)."""
    return store.projects.get(project).id


class Opened(Generic[T]):
    """An adapter over a store opened from a URL, closed with it: a context manager for
    ``with`` and for ``async with``."""

    def __init__(self, url: str, make: Callable[[Store], T], options: dict[str, Any]) -> None:
        self._url = url
        self._make = make
        self._options = options
        self._store: Store | None = None

    def __enter__(self) -> T:
        store = open_store(self._url, **self._options)
        try:
            adapter = self._make(store)
        except BaseException:
            store.close()
            raise
        self._store = store
        return adapter

    def __exit__(self, *_exc: object) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()

    async def __aenter__(self) -> T:
        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.__exit__, *exc)
