"""``/projects/{project}/memories``."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from pydantic import BaseModel

from ctxbase.records import Memory, MemoryChange, MemoryIn, MemoryPatch, Page
from ctxbase.server.deps import DEFAULT_LIMIT, Actor, Cursor, Limit, ProjectSlug, StoreDep

router = APIRouter(prefix="/projects/{project}/memories", tags=["memories"])


class PruneResult(BaseModel):
    deleted: int


@router.post("", status_code=201, response_model=Memory, summary="Add a memory")
def add_memory(
    project: ProjectSlug, body: MemoryIn, store: StoreDep, actor: Actor = None
) -> Memory:
    fields = body.model_dump(exclude={"content"})
    return store.memories.add(body.content, project=project, actor=actor, **fields)


@router.get("", response_model=Page[Memory], summary="List unexpired memories, newest first")
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


@router.post("/prune", response_model=PruneResult, summary="Delete the project's expired memories")
def prune_memories(project: ProjectSlug, store: StoreDep) -> PruneResult:
    return PruneResult(deleted=store.memories.prune(project=project))


@router.get("/{memory_id}", response_model=Memory, summary="Get a memory (counts as an access)")
def get_memory(project: ProjectSlug, memory_id: uuid.UUID, store: StoreDep) -> Memory:
    return store.memories.get(memory_id, project=project)


@router.patch("/{memory_id}", response_model=Memory, summary="Update a memory")
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


@router.delete(
    "/{memory_id}", status_code=204, summary="Delete a memory with its history and embeddings"
)
def delete_memory(project: ProjectSlug, memory_id: uuid.UUID, store: StoreDep) -> Response:
    store.memories.delete(memory_id, project=project)
    return Response(status_code=204)


@router.get(
    "/{memory_id}/history",
    response_model=Page[MemoryChange],
    summary="Every change of a memory, oldest first",
)
def memory_history(
    project: ProjectSlug, memory_id: uuid.UUID, store: StoreDep
) -> Page[MemoryChange]:
    return Page[MemoryChange](items=store.memories.history(memory_id, project=project))
