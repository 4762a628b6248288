"""LangChain chat history kept in ctxbase conversations and messages.

A LangChain session id may be any string; its conversation is the one whose metadata
holds ``{"langchain_session_id": <id>}``, created on the first message (two processes
racing to create it keep the oldest, and the loser's empty conversation is removed).
Each message is stored as a ctxbase message of the matching role (human → user, ai →
assistant, system, tool; a ``chat`` message's own role when ctxbase has it) with its
token usage and finish reason, and LangChain's own fields (tool calls, ids, additional
and response metadata, non-text content) in ``metadata["langchain"]``, so it reads back
as it was written. Messages written through any other interface read back as the
LangChain message of their role.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

from ctxbase.errors import NotFoundError
from ctxbase.records import Message

SESSION_KEY = "langchain_session_id"
#: Where a message keeps what LangChain needs beyond role and text.
LANGCHAIN_KEY = "langchain"
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_ROLES.update(function="tool", AIMessageChunk="assistant", HumanMessageChunk="user")
_PAGE = 1000


class CtxbaseChatMessageHistory(BaseChatMessageHistory):
    """The messages of one LangChain session, in a ctxbase conversation.

    ``store`` is a :class:`ctxbase.Store` or a :class:`ctxbase.Client`; ``title`` and
    ``agent_id`` are given to the conversation when it is created.
    """

    def __init__(
        self,
        store: Any,
        session_id: str,
        *,
        project: str = "default",
        title: str | None = None,
        agent_id: str | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("session_id must be a non-empty string")
        self.store = store
        self.session_id = session_id
        self.project = project
        self.title = title
        self.agent_id = agent_id
        self._conversation_id: uuid.UUID | None = None

    # --- the conversation ---

    @property
    def conversation_id(self) -> uuid.UUID | None:
        """The session's conversation, None until it has a message."""
        if self._conversation_id is None:
            self._conversation_id = self._find()
        return self._conversation_id

    def _find(self) -> uuid.UUID | None:
        found = self.store.conversations.list(
            metadata={SESSION_KEY: self.session_id}, limit=_PAGE, project=self.project
        ).items
        return min(chat.id for chat in found) if found else None  # ids are time-ordered

    def _ensure(self) -> uuid.UUID:
        existing = self.conversation_id
        if existing is not None:
            return existing
        created = self.store.conversations.create(
            title=self.title,
            agent_id=self.agent_id,
            metadata={SESSION_KEY: self.session_id},
            project=self.project,
        ).id
        kept = self._find() or created
        if kept != created:  # another process created it first: use theirs
            self.store.conversations.delete(created, project=self.project)
        self._conversation_id = kept
        return kept

    # --- BaseChatMessageHistory ---

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        conversation_id = self.conversation_id
        if conversation_id is None:
            return []
        stored: list[Message] = []
        cursor = None
        try:
            while True:
                page = self.store.messages.list(
                    conversation_id, limit=_PAGE, cursor=cursor, project=self.project
                )
                stored.extend(page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
        except NotFoundError:  # cleared meanwhile, by another history of the session
            self._conversation_id = None
            return []
        return [from_ctxbase(message) for message in stored]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        if not messages:
            return
        rows = [to_ctxbase(message) for message in messages]
        try:
            self.store.messages.append_many(self._ensure(), rows, project=self.project)
        except NotFoundError:  # cleared meanwhile: start the session's conversation again
            self._conversation_id = None
            self.store.messages.append_many(self._ensure(), rows, project=self.project)

    def clear(self) -> None:
        """Delete the session's conversation with its messages."""
        conversation_id = self.conversation_id
        self._conversation_id = None
        if conversation_id is None:
            return
        with contextlib.suppress(NotFoundError):  # cleared meanwhile
            self.store.conversations.delete(conversation_id, project=self.project)


# --- conversion ---------------------------------------------------------------------------


def to_ctxbase(message: BaseMessage) -> dict[str, Any]:
    """A ctxbase message (``MessageIn`` fields) for a LangChain message."""
    data = message_to_dict(message)
    fields = data["data"]
    content = fields.pop("content")
    text = content if isinstance(content, str) else json.dumps(content)
    if not isinstance(content, str):
        fields["content_json"] = True
    role = _ROLES.get(message.type)
    if role is None:  # a `chat` message: its own role if ctxbase has it
        own = getattr(message, "role", "")
        role = own if own in ("user", "assistant", "system", "tool") else "user"
    usage = getattr(message, "usage_metadata", None) or {}
    response = fields.get("response_metadata") or {}
    finish = response.get("finish_reason") or response.get("stop_reason")
    return {
        "role": role,
        "content": text,
        "input_tokens": int(usage.get("input_tokens") or 0),
        "output_tokens": int(usage.get("output_tokens") or 0),
        "finish_reason": finish if isinstance(finish, str) else None,
        "metadata": {LANGCHAIN_KEY: {"type": data["type"], "data": _compact(fields)}},
    }


def from_ctxbase(message: Message) -> BaseMessage:
    """The LangChain message a ctxbase message stands for."""
    kept = message.metadata.get(LANGCHAIN_KEY)
    if isinstance(kept, dict) and isinstance(kept.get("data"), dict) and "type" in kept:
        fields = dict(kept["data"])
        content: Any = message.content
        if fields.pop("content_json", False):
            content = json.loads(message.content)
        return messages_from_dict([{"type": kept["type"], "data": {**fields, "content": content}}])[
            0
        ]
    ident = str(message.id)
    if message.role == "user":
        return HumanMessage(content=message.content, id=ident)
    if message.role == "assistant":
        return AIMessage(content=message.content, id=ident)
    if message.role == "system":
        return SystemMessage(content=message.content, id=ident)
    call_id = message.metadata.get("tool_call_id")
    return ToolMessage(content=message.content, id=ident, tool_call_id=str(call_id or ident))


def _compact(fields: dict[str, Any]) -> dict[str, Any]:
    """LangChain's fields without the empty ones (they come back as defaults)."""
    return {key: value for key, value in fields.items() if value not in (None, {}, [], "")}
