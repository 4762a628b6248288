"""Stores whose delivery retries and leases run in fractions of a second."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import ctxbase
from tests.conftest import store_on

FAST_DELIVERY = {
    "delivery_backoff_seconds": 0.02,
    "delivery_backoff_max_seconds": 0.1,
    "delivery_max_attempts": 3,
    "delivery_lease_seconds": 2.0,
    "events_poll_interval": 0.1,
}


@pytest.fixture
def fast_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ctxbase.Store]:
    yield from store_on(backend, tmp_path, request, **FAST_DELIVERY)
