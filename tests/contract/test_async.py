"""The asyncio facade runs the Store's methods without blocking the loop."""

from __future__ import annotations

import asyncio

import pytest

import ctxbase
from tests.conftest import TEST_EMBEDDER


def test_async_facade(database_url: str) -> None:
    async def scenario() -> None:
        async with await ctxbase.open_async(database_url, embedder=TEST_EMBEDDER) as store:
            conversation = await store.conversations.create(title="async")
            messages = await asyncio.gather(
                *(
                    store.messages.append(conversation.id, role="user", content=str(i))
                    for i in range(20)
                )
            )
            assert sorted(m.position for m in messages) == list(range(1, 21))
            memory = await store.memories.add("async memory")
            assert (await store.memories.get(memory.id)).access_count == 1
            with pytest.raises(ctxbase.NotFoundError):
                await store.conversations.get(memory.id)
            report = await store.check_connection()
            # a database without pgvector works, reported degraded for that alone
            assert report.status == "ok" or [p.code for p in report.problems] == [
                "pgvector_missing"
            ]

    asyncio.run(scenario())
