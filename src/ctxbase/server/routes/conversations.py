"""``/projects/{project}/conversations`` and their messages."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body

from ctxbase.records import (
    Message,
    MessageIn,
)
from ctxbase.server.deps import ProjectSlug, StoreDep
from ctxbase.server.routing import declared

router = APIRouter(tags=["conversations"])


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
