"""LangGraph's checkpointer conformance suite, every capability, on every backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

import ctxbase
from ctxbase.integrations.langgraph import CtxbaseSaver


def test_every_capability_passes(store: ctxbase.Store) -> None:
    @checkpointer_test(name="CtxbaseSaver")
    async def fresh_saver() -> AsyncIterator[CtxbaseSaver]:
        # A project of its own per capability: each suite starts from no threads.
        slug = f"lg-{uuid.uuid4().hex[:8]}"
        store.projects.create(slug, name=slug)
        yield CtxbaseSaver(store, project=slug)

    report = asyncio.run(validate(fresh_saver))

    results = report.results
    assert set(results) == {c.value for c in ALL_CAPABILITIES}
    failures = {name: r.failures for name, r in results.items() if r.passed is not True}
    assert failures == {}
    assert all(r.detected and r.tests_failed == 0 for r in results.values())
    assert report.conformance_level() == "FULL"
