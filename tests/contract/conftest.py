"""The ``api`` fixture: the same tests against Store on every backend and Client over HTTP.

Targets: ``store-sqlite-memory``, ``store-sqlite-file``, ``store-postgres``,
``store-postgres-novector`` (the library) and ``http-sqlite``, ``http-postgres``
(``ctxbase.Client`` against a live server).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import ctxbase
from ctxbase.server import create_app
from tests.live import live_server

TARGETS = [
    "store-sqlite-memory",
    "store-sqlite-file",
    "store-postgres",
    "store-postgres-novector",
    "http-sqlite",
    "http-postgres",
]
_BACKEND_OF = {
    "store-sqlite-memory": "sqlite-memory",
    "store-sqlite-file": "sqlite-file",
    "store-postgres": "postgres",
    "store-postgres-novector": "postgres-novector",
    "http-sqlite": "sqlite-file",
    "http-postgres": "postgres",
}


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(target: str) -> str:
    """Overrides the suite's backend so ``store`` follows the target."""
    return _BACKEND_OF[target]


@pytest.fixture
def http_server(target: str, store: ctxbase.Store) -> Iterator[tuple[str, str] | None]:
    """For the HTTP targets: the URL of a live server over ``store`` and an admin key of
    the store's tenant; None for the library's."""
    if target.startswith("store-"):
        yield None
        return
    # Authentication on, as deployed. (The concurrency tests send thousands of requests a
    # minute with that one key.)
    settings = store.settings.model_copy(
        update={"auth": "required", "rate_limit_per_minute": 1_000_000}
    )
    key = store.keys.create(role="admin", name="contract tests").key
    with live_server(create_app(store=store, settings=settings)) as url:
        yield url, key


@pytest.fixture
def api(http_server: tuple[str, str] | None, store: ctxbase.Store) -> Iterator[Any]:
    """A Store, or a Client talking to a live server over that store."""
    if http_server is None:
        yield store
        return
    url, key = http_server
    with ctxbase.Client(url, api_key=key) as client:
        yield client
