"""The quality operations awaited: through the AsyncStore and the AsyncClient."""

from __future__ import annotations

import asyncio
from typing import Any

import ctxbase
from ctxbase.server import create_app
from tests.live import live_server


async def _scenario(api: Any) -> None:
    conversation = await api.conversations.create(title="async quality")
    messages = await api.messages.append_many(
        conversation.id, [{"role": "assistant", "content": "Checking again."}] * 3
    )
    first, second, _ = (m.id for m in messages)
    await api.quality.add_metric(conversation.id, metric="coherence", value=0.25)
    clash = await api.quality.add_contradiction(
        conversation.id, first_message_id=first, second_message_id=second
    )
    done = await api.quality.update_contradiction(conversation.id, clash.id, status="dismissed")
    assert done.resolved_at is not None
    cited = await api.quality.add_citation(conversation.id, message_id=second, source_reference="s")
    await api.quality.update_citation(conversation.id, cited.id, status="verified")
    found = await api.quality.detect_loops(conversation.id, save=True)
    assert found.loops[0].occurrences == 3
    report = await api.quality.compute_health(conversation.id, save=True)
    assert report.health_score == 25
    listed = await api.conversations.list(max_health=25)
    assert [c.id for c in listed.items] == [conversation.id]
    pages = [
        await getattr(api.quality, f"list_{kind}")(conversation.id)
        for kind in ("metrics", "contradictions", "loops", "citations")
    ]
    assert [len(page.items) for page in pages] == [1, 1, 1, 1]
    await api.quality.delete_loop(conversation.id, pages[2].items[0].id)
    assert (await api.quality.list_loops(conversation.id)).items == []


def test_async_store(store: ctxbase.Store) -> None:
    asyncio.run(_scenario(ctxbase.AsyncStore(store)))


def test_async_client(store: ctxbase.Store) -> None:
    async def run(url: str) -> None:
        async with ctxbase.AsyncClient(url) as client:
            await _scenario(client)

    with live_server(create_app(store=store)) as url:
        asyncio.run(run(url))
