"""Helpers of the quality tests: a conversation with messages to attach records to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Chat:
    """A conversation and its messages, through whichever interface made them."""

    id: Any
    messages: list[Any]


def chat(api: Any, contents: list[tuple[str, str]], **options: Any) -> Chat:
    """A conversation holding ``contents`` as (role, content) messages, in order."""
    conversation = api.conversations.create(title="quality", **options)
    messages = api.messages.append_many(
        conversation.id,
        [{"role": role, "content": content} for role, content in contents],
        **options,
    )
    return Chat(conversation.id, messages)
