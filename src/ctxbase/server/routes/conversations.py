"""``/projects/{project}/conversations`` and their messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from ctxbase.records import (
    Conversation,
    ConversationIn,
    ConversationPatch,
    Message,
    MessageIn,
    Page,
)
from ctxbase.server.deps import DEFAULT_LIMIT, Cursor, Limit, MetadataFilter, ProjectSlug, StoreDep
from ctxbase.server.routing import declared

router = APIRouter(tags=["conversations"])


@declared(router, "conversations.create")
def create_conversation(
    project: ProjectSlug, body: ConversationIn, store: StoreDep
) -> Conversation:
    return store.conversations.create(project=project, **body.model_dump())


@declared(router, "conversations.list")
def list_conversations(
    project: ProjectSlug,
    store: StoreDep,
    metadata: MetadataFilter,
    agent_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Conversation]:
    return store.conversations.list(
        project=project,
        agent_id=agent_id,
        created_after=created_after,
        created_before=created_before,
        metadata=metadata,
        limit=limit,
        cursor=cursor,
    )


@declared(router, "conversations.get")
def get_conversation(
    project: ProjectSlug, conversation_id: uuid.UUID, store: StoreDep
) -> Conversation:
    return store.conversations.get(conversation_id, project=project)


@declared(router, "conversations.update")
def update_conversation(
    project: ProjectSlug, conversation_id: uuid.UUID, body: ConversationPatch, store: StoreDep
) -> Conversation:
    return store.conversations.update(
        conversation_id, project=project, **body.model_dump(exclude_unset=True)
    )


@declared(router, "conversations.delete")
def delete_conversation(
    project: ProjectSlug, conversation_id: uuid.UUID, store: StoreDep
) -> Response:
    store.conversations.delete(conversation_id, project=project)
    return Response(status_code=204)


@declared(
    router,
    "messages.append",
    "messages.append_many",
    response_model=Message | list[Message],
    summary="Append one message (an object) or several (an array), in order",
)
def append_messages(
    project: ProjectSlug,
    conversation_id: uuid.UUID,
    body: Annotated[MessageIn | list[MessageIn], Body()],
    store: StoreDep,
) -> Message | list[Message]:
    if isinstance(body, list):
        return store.messages.append_many(conversation_id, body, project=project)
    return store.messages.append_many(conversation_id, [body], project=project)[0]


@declared(router, "messages.list")
def list_messages(
    project: ProjectSlug,
    conversation_id: uuid.UUID,
    store: StoreDep,
    after: Annotated[int | None, Query(ge=0, description="Only positions after this.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Message]:
    return store.messages.list(
        conversation_id, project=project, after=after, limit=limit, cursor=cursor
    )
