"""Rows of a source system moving in: ``count`` rows of every kind, with ids that are not
UUIDs, timestamps of their own and links between them, and what ctxbase must then hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2023, 5, 1, tzinfo=UTC)
CONVERSATIONS_WITH_MESSAGES = 1000
NAMES_VERSIONS = 4  # each context name has this many versions


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def source_rows(count: int) -> list[dict[str, Any]]:
    """Conversations, then messages, context units, memories, state and events, ``count``
    of each, in the order a dump of the source's tables gives them."""
    talks = CONVERSATIONS_WITH_MESSAGES
    rows: list[dict[str, Any]] = []
    for i in range(count):
        rows.append(
            {"kind": "conversation", "id": f"conv-{i}", "title": f"chat {i}",
             "provider": "openai", "created_at": at(i).isoformat(),
             "updated_at": at(i + 5).isoformat()}
        )  # fmt: skip
    for i in range(count):
        rows.append(
            {"kind": "message", "id": i + 1, "conversation_id": f"conv-{i % talks}",
             "role": "user" if i % 2 == 0 else "assistant",
             "content": f"message {i} about tea and biscuits", "input_tokens": 3,
             "output_tokens": 4, "created_at": at(i).isoformat(),
             "updated_at": at(i + 1).isoformat()}
        )  # fmt: skip
    for i in range(count):
        rows.append(
            {"kind": "context", "id": f"ctx-{i}", "name": f"src/file{i // NAMES_VERSIONS}.py",
             "content": f"def f{i}(): return {i}", "source_type": "file",
             "created_at": at(i).isoformat(), "updated_at": at(i + 7).isoformat()}
        )  # fmt: skip
    for i in range(count):
        rows.append(
            {"kind": "memory", "id": f"mem-{i}", "content": f"fact {i}: likes tea {i % 7}",
             "conversation_id": f"conv-{i % talks}", "first_message_id": i % talks + 1,
             "owner_conversation_id": f"conv-{i % 50}" if i % 3 == 0 else None,
             "importance": (i % 10) / 10, "access_count": i % 5,
             "created_at": at(i).isoformat(), "updated_at": at(i + 2).isoformat()}
        )  # fmt: skip
    for i in range(count):
        rows.append(
            {"kind": "state", "namespace": f"agents/a{i % 100}", "key": f"k{i}",
             "value": {"i": i}, "version": 1 + i % 3,
             "owner_conversation_id": f"conv-{i % 10}" if i % 2 else None,
             "created_at": at(i).isoformat(), "updated_at": at(i + 3).isoformat()}
        )  # fmt: skip
    for i in range(count):
        rows.append(
            {"kind": "event", "id": f"ev-{i}", "sequence": i + 1, "event_type": "thing.done",
             "data": {"i": i}, "created_at": at(i).isoformat()}
        )  # fmt: skip
    return rows
