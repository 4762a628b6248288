"""``/projects/{project}/messages/{id}``: a message by id, whatever its conversation."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from ctxbase.records import Message
from ctxbase.server.deps import ProjectSlug, StoreDep
from ctxbase.server.routing import declared

router = APIRouter(tags=["conversations"])


@declared(router, "messages.get")
def get_message(project: ProjectSlug, message_id: uuid.UUID, store: StoreDep) -> Message:
    return store.messages.get(message_id, project=project)
