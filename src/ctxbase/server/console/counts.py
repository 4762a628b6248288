"""How many items a project holds, per kind: the figures beside every list.

The API has no counting operation (its lists are cursor pages), so the console reads the
counts itself, in one statement per project, only for projects its visitor's key can see
(the project is looked up inside the key's tenant, as the Store does). Counts are of what
the lists show: latest context versions, unexpired memories and state entries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from ctxbase.db.schema import (
    ContextUnit,
    Conversation,
    EventStream,
    Memory,
    Message,
    StateEntry,
    Subscription,
    table,
    utcnow,
)
from ctxbase.errors import NotFoundError
from ctxbase.store import Store
from ctxbase.store.base import project_id_expression

KINDS = ("conversations", "messages", "contexts", "memories", "state", "events", "subscriptions")


def project_counts(store: Store, project: str) -> dict[str, int]:
    """Items per kind in ``project`` as ``store``'s scope sees it; NotFoundError when the
    project is not visible."""
    scope = store.scope
    if scope.projects is not None and project not in scope.projects:
        raise NotFoundError(f"No project {project!r}")
    project_id = project_id_expression(scope.tenant, project)
    now = utcnow()
    conversations, messages = table(Conversation), table(Message)
    contexts, memories = table(ContextUnit), table(Memory)
    state, streams, subscriptions = table(StateEntry), table(EventStream), table(Subscription)

    def count(items: Any, *conditions: Any) -> Any:
        return (
            select(func.count())
            .select_from(items)
            .where(items.c.project_id == project_id, *conditions)
            .scalar_subquery()
        )

    statement = select(
        count(conversations),
        count(messages),
        count(contexts, contexts.c.superseded_by.is_(None)),
        count(memories, or_(memories.c.expires_at.is_(None), memories.c.expires_at > now)),
        count(state, or_(state.c.expires_at.is_(None), state.c.expires_at > now)),
        select(func.coalesce(func.max(streams.c.last_sequence), 0))
        .where(streams.c.project_id == project_id)
        .scalar_subquery(),
        count(subscriptions),
        project_id,
    )
    with store.db.read() as connection:
        row = connection.execute(statement).one()
    if row[-1] is None:
        raise NotFoundError(f"No project {project!r}")
    return {kind: int(value or 0) for kind, value in zip(KINDS, row[:-1], strict=True)}
