"""Links a write makes to other records must point at the caller's own.

A memory names the conversation it came from, a memory or a state entry the conversation
that owns it, a context unit the unit it supersedes. Each must be in the same project;
anything else, another tenant's record included, is refused exactly as an id that does
not exist, before the database's foreign keys could tell the two apart (the answer would
otherwise reveal other tenants' ids, and their deletions would reach into the caller's
rows).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, select

from ctxbase.db.schema import Conversation as ConversationRow
from ctxbase.db.schema import table
from ctxbase.errors import InvalidInputError

conversations_table = table(ConversationRow)


def check_conversation(
    connection: Connection,
    project_id: uuid.UUID,
    project: str,
    field: str,
    conversation_id: uuid.UUID | None,
) -> None:
    """The conversation named in ``field`` must be in the project ``project_id``."""
    if conversation_id is None:
        return
    found = connection.execute(
        select(conversations_table.c.id).where(
            conversations_table.c.id == conversation_id,
            conversations_table.c.project_id == project_id,
        )
    ).first()
    if found is None:
        raise no_such(field, "conversation", project)


def no_such(field: str, what: str, project: str) -> InvalidInputError:
    """The refusal of a link in ``field`` to no ``what`` of ``project`` of the caller's."""
    # Names neither the id nor why: "absent" and "someone else's" must read the same.
    return InvalidInputError(
        f"{field} names no {what} of project {project!r}",
        details=[{"location": [field], "message": f"no such {what}", "type": "not_found"}],
    )
