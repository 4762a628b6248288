"""The data browser, part one: conversations with their messages, and memories with their
history, edit and delete."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ctxbase.errors import InvalidInputError
from ctxbase.server.console.counts import project_counts
from ctxbase.server.console.guard import Visitor, parse_uuid
from ctxbase.server.console.pages.common import (
    PAGE,
    VisitorDep,
    act,
    field,
    number_field,
    page,
    redirect,
)

router = APIRouter(prefix="/p/{project}")


async def count_of(v: Visitor, project: str, kind: str) -> int:
    """How many ``kind`` items ``project`` holds (see :mod:`..counts`)."""
    counts = await run_in_threadpool(project_counts, v.store(), project, (kind,))
    return counts[kind]


def opened(v: Visitor, project: str) -> None:
    v.session.project = project


def query_string(**values: Any) -> str:
    """``?a=1&b=2`` of the values given (empty ones left out), for pager links."""
    from urllib.parse import urlencode

    kept = {k: v for k, v in values.items() if v not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""


# --- conversations ------------------------------------------------------------------------


@router.get("/conversations")
async def conversations(
    v: VisitorDep,
    project: str,
    agent_id: str = "",
    created_after: str = "",
    created_before: str = "",
    metadata: str = "",
    cursor: str | None = None,
) -> Response:
    opened(v, project)
    filters = {
        "agent_id": agent_id,
        "created_after": created_after,
        "created_before": created_before,
        "metadata": metadata,
    }
    listed, total = await asyncio.gather(
        v.api.conversations.list(
            agent_id=agent_id or None,
            created_after=utc(created_after or None),
            created_before=utc(created_before or None),
            metadata=json_text(metadata),
            limit=PAGE,
            cursor=cursor,
            project=project,
        ),
        count_of(v, project, "conversations"),
    )
    return await page(
        v,
        "conversations.html",
        title=f"Conversations · {project}",
        project=project,
        section="conversations",
        items=listed.items,
        next_cursor=listed.next_cursor,
        cursor=cursor,
        total=total,
        filters=filters,
        here=f"{v.base}/p/{project}/conversations{query_string(**filters)}",
    )


@router.get("/conversations/{conversation_id}")
async def conversation(
    v: VisitorDep, project: str, conversation_id: str, cursor: str | None = None
) -> Response:
    opened(v, project)
    cid = parse_uuid(conversation_id)
    found, messages = await asyncio.gather(
        v.api.conversations.get(cid, project=project),
        v.api.messages.list(cid, limit=PAGE, cursor=cursor, project=project),
    )
    return await page(
        v,
        "conversation.html",
        title=found.title or "Conversation",
        project=project,
        section="conversations",
        c=found,
        messages=messages.items,
        next_cursor=messages.next_cursor,
        cursor=cursor,
        here=f"{v.base}/p/{project}/conversations/{cid}",
    )


@router.post("/conversations/{conversation_id}/delete")
async def delete_conversation(v: VisitorDep, project: str, conversation_id: str) -> Response:
    cid = parse_uuid(conversation_id)
    deleted = await act(
        v,
        lambda: deleted_(v.api.conversations.delete(cid, project=project)),
        "Conversation deleted, with its messages.",
    )
    if deleted is None:
        return redirect(f"{v.base}/p/{project}/conversations/{cid}")
    return redirect(f"{v.base}/p/{project}/conversations")


# --- memories -----------------------------------------------------------------------------


@router.get("/memories")
async def memories(
    v: VisitorDep,
    project: str,
    agent_id: str = "",
    user_id: str = "",
    memory_type: str = "",
    cursor: str | None = None,
) -> Response:
    opened(v, project)
    listed, total = await asyncio.gather(
        v.api.memories.list(
            agent_id=agent_id or None,
            user_id=user_id or None,
            memory_type=memory_type or None,
            limit=PAGE,
            cursor=cursor,
            project=project,
        ),
        count_of(v, project, "memories"),
    )
    filters = {"agent_id": agent_id, "user_id": user_id, "memory_type": memory_type}
    return await page(
        v,
        "memories.html",
        title=f"Memories · {project}",
        project=project,
        section="memories",
        items=listed.items,
        next_cursor=listed.next_cursor,
        cursor=cursor,
        total=total,
        filters=filters,
        here=f"{v.base}/p/{project}/memories{query_string(**filters)}",
    )


@router.get("/memories/{memory_id}")
async def memory(v: VisitorDep, project: str, memory_id: str) -> Response:
    opened(v, project)
    mid = parse_uuid(memory_id)
    found, history = await asyncio.gather(
        v.api.memories.get(mid, project=project),
        v.api.memories.history(mid, project=project),
    )
    return await page(
        v,
        "memory.html",
        title="Memory",
        project=project,
        section="memories",
        m=found,
        history=list(reversed(history)),
    )


@router.post("/memories/{memory_id}/edit")
async def edit_memory(v: VisitorDep, project: str, memory_id: str) -> Response:
    mid = parse_uuid(memory_id)
    await act(
        v,
        lambda: v.api.memories.update(
            mid,
            content=field(v, "content"),
            importance=number_field(v, "importance"),
            expires_at=utc(field(v, "expires_at")),
            actor=v.actor,
            project=project,
        ),
        "Memory saved; the change is at the top of its history.",
    )
    return redirect(f"{v.base}/p/{project}/memories/{mid}")


@router.post("/memories/{memory_id}/delete")
async def delete_memory(v: VisitorDep, project: str, memory_id: str) -> Response:
    mid = parse_uuid(memory_id)
    deleted = await act(
        v,
        lambda: deleted_(v.api.memories.delete(mid, project=project)),
        "Memory deleted, with its history and embeddings.",
    )
    if deleted is None:
        return redirect(f"{v.base}/p/{project}/memories/{mid}")
    return redirect(f"{v.base}/p/{project}/memories")


async def deleted_(call: Any) -> bool:
    """True once ``call`` (a deletion, which answers nothing) is done."""
    await call
    return True


def json_text(text: str) -> dict[str, Any] | None:
    """A JSON object typed in a filter field; InvalidInputError if it is not one."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInputError('metadata must be a JSON object, e.g. {"k": "v"}') from None
    if not isinstance(value, dict):
        raise InvalidInputError('metadata must be a JSON object, e.g. {"k": "v"}')
    return value


def utc(text: str | None) -> datetime | None:
    """A ``datetime-local`` field's value, read as UTC."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"Not a date and time: {text[:40]!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
