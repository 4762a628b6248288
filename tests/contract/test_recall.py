"""Recall through every interface and backend: the budget, sources, duplicates, order and
the conversation's latest messages; and a project's stats."""

from __future__ import annotations

from typing import Any

import pytest

from ctxbase.errors import InvalidInputError, NotFoundError
from ctxbase.store.recall import cut_to_tokens, estimate_tokens


def test_tokens_are_estimated_from_characters() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("日本語") == 3  # one per character outside ASCII
    assert estimate_tokens("ab日") == 2


def test_a_text_is_cut_to_its_budget_at_a_word() -> None:
    text = "one two three four five six seven eight nine ten " * 4
    cut = cut_to_tokens(text, 10)
    assert estimate_tokens(cut) <= 10
    assert cut.endswith(" …")
    assert text.startswith(cut.removesuffix(" …"))
    assert cut.removesuffix(" …").split()[-1] in text.split()  # whole words only
    assert cut_to_tokens("short", 10) == "short"
    assert cut_to_tokens("a long text", 0) == ""


def _seed(api: Any) -> dict[str, Any]:
    memory = api.memories.add("The user drinks espresso every morning", importance=0.9)
    api.memories.add("the user  drinks ESPRESSO every morning")  # the same text again
    api.memories.add("The office plant needs water on Fridays")
    unit = api.contexts.add("notes/coffee.md", "Coffee machine: descale it monthly. " * 60)
    chat = api.conversations.create(title="morning")
    messages = api.messages.append_many(
        chat.id,
        [
            {"role": "user", "content": f"message {i} about the espresso machine"}
            for i in range(1, 7)
        ],
    )
    return {"memory": memory, "unit": unit, "chat": chat, "messages": messages}


def test_recall_fills_the_budget_with_sourced_deduplicated_items(api: Any) -> None:
    seeded = _seed(api)
    result = api.recall("espresso coffee machine", max_tokens=400, mode="text")
    assert 0 < result.tokens <= 400 == result.max_tokens
    assert result.token_estimate == "chars"
    texts = [item.text.lower() for item in result.items]
    assert sum("espresso every morning" in text for text in texts) == 1  # duplicate dropped
    for item in result.items:
        assert item.source == f"{item.kind}:{item.id}"
        assert f"[{item.source}" in result.text
        assert item.reason == "search" and item.score is not None
    kinds = [item.kind for item in result.items]
    assert kinds == sorted(kinds, key=["memory", "context", "message"].index)  # sections
    memories = [i for i in result.items if i.kind == "memory"]
    assert memories[0].id == seeded["memory"].id
    unit = next(i for i in result.items if i.kind == "context")
    assert unit.id == seeded["unit"].id and unit.title == "notes/coffee.md"
    assert unit.truncated and unit.text.endswith(" …")
    assert result.text.startswith("Memories:\n- [memory:")


def test_a_small_budget_keeps_the_best_and_counts_what_it_left_out(api: Any) -> None:
    _seed(api)
    generous = api.recall("espresso", max_tokens=5000, mode="text")
    tight = api.recall("espresso", max_tokens=40, mode="text")
    assert tight.tokens <= 40
    assert len(tight.items) < len(generous.items)
    assert tight.omitted >= len(generous.items) - len(tight.items)
    assert api.recall("espresso", max_tokens=1, mode="text").items == []


def test_recall_brings_the_conversations_latest_messages_in_order(api: Any) -> None:
    seeded = _seed(api)
    messages = seeded["messages"]
    result = api.recall(
        "office plant",
        conversation_id=seeded["chat"].id,
        recent_messages=3,
        kinds=["memory", "message"],
        max_tokens=1000,
        mode="text",
    )
    recent = [item for item in result.items if item.reason == "recent"]
    assert [item.id for item in recent] == [m.id for m in messages[-3:]]
    assert [item.title for item in recent] == ["user #4", "user #5", "user #6"]
    assert all(item.score is None for item in recent)
    assert result.items[-1].reason == "recent"  # recent messages close the text
    assert "Recent messages:" in result.text
    found_ids = [item.id for item in result.items]
    assert len(found_ids) == len(set(found_ids))  # a message found twice is given once
    assert result.items[0].kind == "memory" and "plant" in result.items[0].text


def test_recent_messages_take_at_most_half_a_budget_the_search_shares(api: Any) -> None:
    seeded = _seed(api)
    result = api.recall(
        "office plant", conversation_id=seeded["chat"].id, max_tokens=60, mode="text"
    )
    recent = [item for item in result.items if item.reason == "recent"]
    assert recent and recent[-1].id == seeded["messages"][-1].id  # the newest first
    assert sum(item.tokens for item in recent) <= 30
    assert any(item.reason == "search" for item in result.items)
    assert result.tokens <= 60


def test_recall_refuses_bad_input_and_unknown_conversations(api: Any) -> None:
    with pytest.raises(InvalidInputError):
        api.recall("x", max_tokens=0)
    with pytest.raises(InvalidInputError):
        api.recall("")
    with pytest.raises(NotFoundError):
        api.recall("x", conversation_id="01a25090-bfc0-787e-aa0f-5e31a5970744")
    with pytest.raises(NotFoundError):
        api.recall("x", project="nowhere")


def test_stats_count_what_the_project_holds(api: Any) -> None:
    empty = api.stats()
    assert (empty.conversations, empty.messages, empty.memories, empty.events) == (0, 0, 0, 0)
    _seed(api)
    api.contexts.add("notes/coffee.md", "a second version")
    api.state.put("step", 3, namespace="agent")
    api.events.append("coffee.made", {"cups": 2})
    stats = api.stats()
    assert stats.project == "default"
    assert (stats.conversations, stats.messages, stats.memories) == (1, 6, 3)
    assert (stats.context_units, stats.state_entries, stats.events) == (1, 1, 1)
    with pytest.raises(NotFoundError):
        api.stats(project="nowhere")
