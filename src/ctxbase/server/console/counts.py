"""How many items a project holds, per kind: the figures beside every list.

The API has no counting operation (its lists are cursor pages), so the console reads the
counts itself, in one statement, only for projects its visitor's key can see (the project
is looked up inside the key's tenant, as the Store does). Counts are of what the lists
show: latest context versions, unexpired memories and state entries.

Each count is written to stay an index scan, or less, with 100,000 items in a project:
messages are the sum of their conversations' counters, events the stream's last
sequence (both gapless), and unexpired memories all memories less the expired ones (found
through the expiry index).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select

from ctxbase.db.schema import (
    ContextUnit,
    Conversation,
    EventStream,
    Memory,
    StateEntry,
    Subscription,
    table,
    utcnow,
)
from ctxbase.errors import NotFoundError
from ctxbase.store import Store
from ctxbase.store.base import project_id_expression

KINDS = ("conversations", "messages", "contexts", "memories", "state", "events", "subscriptions")


def project_counts(store: Store, project: str, kinds: Iterable[str] = KINDS) -> dict[str, int]:
    """Items of each of ``kinds`` in ``project`` as ``store``'s scope sees it;
    NotFoundError when the project is not visible."""
    scope = store.scope
    if scope.projects is not None and project not in scope.projects:
        raise NotFoundError(f"No project {project!r}")
    project_id = project_id_expression(scope.tenant, project)
    wanted = [kind for kind in KINDS if kind in set(kinds)]
    statement = select(*(_count(kind, project_id) for kind in wanted), project_id)
    with store.db.read() as connection:
        row = connection.execute(statement).one()
    if row[-1] is None:
        raise NotFoundError(f"No project {project!r}")
    return {kind: int(value or 0) for kind, value in zip(wanted, row[:-1], strict=True)}


def _count(kind: str, project_id: Any) -> Any:
    now = utcnow()
    conversations, contexts = table(Conversation), table(ContextUnit)
    memories, state = table(Memory), table(StateEntry)

    def rows(items: Any, *conditions: Any) -> Any:
        return (
            select(func.count())
            .select_from(items)
            .where(items.c.project_id == project_id, *conditions)
        )

    if kind == "conversations":
        statement = rows(conversations)
    elif kind == "messages":
        statement = select(func.coalesce(func.sum(conversations.c.message_count), 0)).where(
            conversations.c.project_id == project_id
        )
    elif kind == "contexts":
        statement = rows(contexts, contexts.c.superseded_by.is_(None))
    elif kind == "memories":
        expired = rows(memories, memories.c.expires_at <= now).scalar_subquery()
        statement = select(rows(memories).scalar_subquery() - expired)
    elif kind == "state":
        statement = rows(state, or_(state.c.expires_at.is_(None), state.c.expires_at > now))
    elif kind == "events":
        streams = table(EventStream)
        statement = select(func.coalesce(func.max(streams.c.last_sequence), 0)).where(
            streams.c.project_id == project_id
        )
    else:
        statement = rows(table(Subscription))
    return statement.scalar_subquery()
