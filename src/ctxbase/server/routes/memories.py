"""``/projects/{project}/memories``."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from ctxbase.api.models import Deleted
from ctxbase.records import Memory, MemoryChange, MemoryIn, MemoryPatch, Page
from ctxbase.server.deps import DEFAULT_LIMIT, Actor, Cursor, Limit, ProjectSlug, StoreDep
from ctxbase.server.routing import declared

router = APIRouter(tags=["memories"])


@declared(router, "memories.add")
def add_memory(
    project: ProjectSlug, body: MemoryIn, store: StoreDep, actor: Actor = None
) -> Memory:
    fields = body.model_dump(exclude={"content"})
    return store.memories.add(body.content, project=project, actor=actor, **fields)


@declared(router, "memories.list")
def list_memories(
    project: ProjectSlug,
    store: StoreDep,
    agent_id: str | None = None,
    user_id: str | None = None,
    memory_type: str | None = None,
    conversation_id: uuid.UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Memory]:
    return store.memories.list(
        project=project,
        agent_id=agent_id,
        user_id=user_id,
        memory_type=memory_type,
        conversation_id=conversation_id,
        limit=limit,
        cursor=cursor,
    )


@declared(router, "memories.prune")
def prune_memories(project: ProjectSlug, store: StoreDep) -> Deleted:
    return Deleted(deleted=store.memories.prune(project=project))


@declared(router, "memories.get")
def get_memory(project: ProjectSlug, memory_id: uuid.UUID, store: StoreDep) -> Memory:
    return store.memories.get(memory_id, project=project)


@declared(router, "memories.update")
def update_memory(
    project: ProjectSlug,
    memory_id: uuid.UUID,
    body: MemoryPatch,
    store: StoreDep,
    actor: Actor = None,
) -> Memory:
    return store.memories.update(
        memory_id, project=project, actor=actor, **body.model_dump(exclude_unset=True)
    )


@declared(router, "memories.delete")
def delete_memory(project: ProjectSlug, memory_id: uuid.UUID, store: StoreDep) -> Response:
    store.memories.delete(memory_id, project=project)
    return Response(status_code=204)


@declared(router, "memories.history")
def memory_history(
    project: ProjectSlug, memory_id: uuid.UUID, store: StoreDep
) -> Page[MemoryChange]:
    return Page[MemoryChange](items=store.memories.history(memory_id, project=project))
