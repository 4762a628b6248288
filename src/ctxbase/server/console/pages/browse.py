"""The data browser, part one: conversations with their messages, and memories with their
history, edit and delete."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.responses import Response

from ctxbase.server.console.guard import parse_uuid
from ctxbase.server.console.pages.common import (
    PAGE,
    VisitorDep,
    act,
    delete_item,
    field,
    fragment,
    json_text,
    listing,
    number_field,
    opened,
    page,
    redirect,
    utc,
)

router = APIRouter(prefix="/p/{project}")


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
    filters = {
        "agent_id": agent_id,
        "created_after": created_after,
        "created_before": created_before,
        "metadata": metadata,
    }
    return await listing(
        v,
        "conversations",
        lambda: v.api.conversations.list(
            agent_id=agent_id or None,
            created_after=utc(created_after or None),
            created_before=utc(created_before or None),
            metadata=json_text(metadata),
            limit=PAGE,
            cursor=cursor,
            project=project,
        ),
        title="Conversations",
        cursor=cursor,
        filters=filters,
        project=project,
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


@router.get("/conversations/{conversation_id}/quality")
async def quality(v: VisitorDep, project: str, conversation_id: str) -> Response:
    """The conversation's quality records: metrics, contradictions, repetition loops and
    citations (loaded beside the conversation's page)."""
    cid = parse_uuid(conversation_id)
    quality = v.api.quality
    metrics, contradictions, loops, citations = await asyncio.gather(
        quality.list_metrics(cid, limit=PAGE, project=project),
        quality.list_contradictions(cid, limit=PAGE, project=project),
        quality.list_loops(cid, limit=PAGE, project=project),
        quality.list_citations(cid, limit=PAGE, project=project),
    )
    records = {
        "metrics": metrics.items,
        "contradictions": contradictions.items,
        "loops": loops.items,
        "citations": citations.items,
    }
    if v.request.headers.get("hx-request"):
        return fragment(v, "_quality.html", project=project, **records)
    found = await v.api.conversations.get(cid, project=project)
    return await page(
        v,
        "quality.html",
        title=f"Quality · {found.title or 'conversation'}",
        project=project,
        section="conversations",
        c=found,
        **records,
    )


@router.post("/conversations/{conversation_id}/delete")
async def delete_conversation(v: VisitorDep, project: str, conversation_id: str) -> Response:
    cid = parse_uuid(conversation_id)
    return await delete_item(
        v,
        lambda: v.api.conversations.delete(cid, project=project),
        "Conversation deleted, with its messages.",
        f"{v.base}/p/{project}/conversations/{cid}",
    )


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
    return await listing(
        v,
        "memories",
        lambda: v.api.memories.list(
            agent_id=agent_id or None,
            user_id=user_id or None,
            memory_type=memory_type or None,
            limit=PAGE,
            cursor=cursor,
            project=project,
        ),
        title="Memories",
        cursor=cursor,
        filters={"agent_id": agent_id, "user_id": user_id, "memory_type": memory_type},
        project=project,
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
    """Save the form; "never expires" removes the expiry, whatever the date field still
    shows (it is filled in with the current expiry)."""
    mid = parse_uuid(memory_id)
    never = v.form.get("never_expires") == "on"
    await act(
        v,
        lambda: v.api.memories.update(
            mid,
            content=field(v, "content"),
            importance=number_field(v, "importance"),
            expires_at=None if never else utc(field(v, "expires_at")),
            clear_expiry=never,
            actor=v.actor,
            project=project,
        ),
        "Memory saved; the change is at the top of its history.",
    )
    return redirect(f"{v.base}/p/{project}/memories/{mid}")


@router.post("/memories/{memory_id}/delete")
async def delete_memory(v: VisitorDep, project: str, memory_id: str) -> Response:
    mid = parse_uuid(memory_id)
    return await delete_item(
        v,
        lambda: v.api.memories.delete(mid, project=project),
        "Memory deleted, with its history and embeddings.",
        f"{v.base}/p/{project}/memories/{mid}",
    )
