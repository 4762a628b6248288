"""The ids of one batch: original ids mapped to ctxbase ids, references resolved the same
way, and the batch's own duplicates found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ctxbase.db.schema import new_id
from ctxbase.records.imports import mapped_id, uuid_or_none
from ctxbase.store.imports.reading import Parsed, shown
from ctxbase.store.state import check_key, check_namespace

#: The kind of row each reference names.
REFERENCES: dict[str, dict[str, str]] = {
    "message": {"conversation_id": "conversation"},
    "context": {"supersedes": "context"},
    "memory": {
        "conversation_id": "conversation",
        "first_message_id": "message",
        "owner_conversation_id": "conversation",
    },
    "state": {"owner_conversation_id": "conversation"},
}


class Ids:
    """Original ids to ctxbase ids, remembering those that were not UUIDs."""

    def __init__(self, namespace: uuid.UUID) -> None:
        self.namespace = namespace
        self.mapped: dict[str, dict[str, uuid.UUID]] = {}
        self._known: dict[tuple[str, int | str], uuid.UUID] = {}

    def of(self, kind: str, original: int | str | None) -> uuid.UUID | None:
        if original is None:
            return None
        known = self._known.get((kind, original))
        if known is not None:
            return known
        value = uuid_or_none(original)
        if value is None:
            value = mapped_id(kind, original, self.namespace)
            self.mapped.setdefault(kind, {})[str(original)] = value
        if len(self._known) < _MAX_KNOWN:
            self._known[(kind, original)] = value
        return value


#: Ids remembered per import: references repeat (a conversation's messages).
_MAX_KNOWN = 200_000


@dataclass(slots=True)
class Pending:
    """One row of the batch with its ctxbase id and the ids its references name."""

    parsed: Parsed
    kind: str
    row: Any
    id: uuid.UUID | None
    refs: dict[str, uuid.UUID | None] = field(default_factory=dict)
    #: A state entry's checked namespace and key.
    state_key: tuple[str, str] | None = None

    def original(self, name: str = "id") -> str:
        """How the row wrote its id (or a reference), for messages."""
        return shown(getattr(self.row, name))


def plan(batch: list[Parsed], ids: Ids) -> tuple[list[Pending], list[dict[str, Any]]]:
    """The batch's rows with their ids, and the problems found without the database:
    an id given twice, a bad state namespace or key."""
    problems: list[dict[str, Any]] = []
    pending: list[Pending] = []
    seen: dict[tuple[str, Any], int] = {}
    for parsed in batch:
        row: Any = parsed.row
        item = Pending(parsed, parsed.kind, row, None)
        if parsed.kind == "state":
            try:
                item.state_key = (check_namespace(row.namespace), check_key(row.key))
            except Exception as error:
                problems.append(parsed.problem("key", getattr(error, "message", str(error))))
                continue
            identity: Any = item.state_key
        else:
            item.id = ids.of(parsed.kind, row.id) if row.id is not None else new_id()
            identity = item.id
        for name, kind in REFERENCES.get(parsed.kind, {}).items():
            item.refs[name] = ids.of(kind, getattr(row, name))
        earlier = seen.setdefault((parsed.kind, identity), parsed.number)
        if earlier != parsed.number:
            what = "namespace and key" if parsed.kind == "state" else "id"
            field_name = "key" if parsed.kind == "state" else "id"
            problems.append(parsed.problem(field_name, f"the same {what} as line {earlier}"))
        pending.append(item)
    return pending, problems
