"""Checking one batch against the project, inside its write transaction: ids already
taken, references to rows neither in the batch nor in the project, and the positions,
versions and sequences the batch's rows take.

Everything is read with the project's id in the WHERE clause, so a row of another
project is simply not found: a reference to it is refused like one to a missing row.
The conversations that receive messages and the project's event stream are locked
(``FOR UPDATE``, a no-op where the write transaction already excludes other writers), so
concurrent appends wait for the import instead of taking the same positions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from ctxbase.db.backends.base import Backend
from ctxbase.db.schema import (
    ContextUnit,
    Conversation,
    Event,
    EventStream,
    Memory,
    Message,
    StateEntry,
    table,
)
from ctxbase.store.imports.planning import Pending

conversations_table = table(Conversation)
messages_table = table(Message)
contexts_table = table(ContextUnit)
memories_table = table(Memory)
state_table = table(StateEntry)
events_table = table(Event)
streams_table = table(EventStream)
TABLES: dict[str, Table] = {
    "conversation": conversations_table,
    "message": messages_table,
    "context": contexts_table,
    "memory": memories_table,
    "event": events_table,
}
#: Ids per IN list: well under every backend's limit on bound parameters.
CHUNK = 500


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def among(column: Any, values: list[Any]) -> Any:
    """``column IN (values)`` with the values inline: PostgreSQL hashes a list of
    constants, where its generic plan for a prepared list of parameters compares each
    row with every one (see ``store.embedding.vectors``)."""
    return column.in_(bindparam("among", values, expanding=True, literal_execute=True))


@dataclass
class Counters:
    """A conversation's message count and token totals as the batch leaves them."""

    message_count: int
    stored: bool  # already in the project (else written by this batch)
    added: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class NameState:
    """A context name's highest version and latest unit as the batch goes."""

    highest: int = 0
    latest: uuid.UUID | None = None


@dataclass
class Checked:
    """What the checks decided: rows to write, rows to skip, and what each row takes."""

    write: list[Pending] = field(default_factory=list)
    skipped: list[Pending] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)  # line -> position
    counters: dict[uuid.UUID, Counters] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)  # line -> version
    superseded: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # old -> new
    stored_superseded: list[uuid.UUID] = field(default_factory=list)
    sequences: dict[int, int] = field(default_factory=dict)  # line -> sequence
    last_sequence: int | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    #: Some problem is a row already in the project (``existing="skip"`` would pass it).
    exists: bool = False
    _by_kind: dict[str, list[Pending]] | None = field(default=None, init=False, repr=False)

    def of_kind(self, kind: str) -> list[Pending]:
        if self._by_kind is None:
            self._by_kind = {}
            for item in self.write:
                self._by_kind.setdefault(item.kind, []).append(item)
        return self._by_kind.get(kind, [])


class BatchChecks:
    """The checks of one batch, run on the transaction that will write it."""

    def __init__(
        self,
        connection: Connection,
        backend: Backend,
        project: str,
        project_id: uuid.UUID,
        existing: str,
    ) -> None:
        self.c = connection
        self.backend = backend
        self.project = project
        self.project_id = project_id
        self.existing = existing
        self.out = Checked()

    def run(self, pending: list[Pending]) -> Checked:
        self._existing(pending)
        self._conversations()
        self._messages()
        self._memories()
        self._state()
        self._contexts()
        self._events()
        return self.out

    def _missing(self, item: Pending, name: str, what: str) -> None:
        # Names the reference as given; "absent" and "another project's" read the same.
        self.out.problems.append(
            item.parsed.problem(
                name,
                f"{item.original(name)} names no {what} of project {self.project!r} "
                "nor of this batch",
                "not_found",
            )
        )

    def _conflict(self, item: Pending, name: str, message: str) -> None:
        self.out.problems.append(item.parsed.problem(name, message, "conflict"))

    # --- ids already taken ---

    def _existing(self, pending: list[Pending]) -> None:
        taken: dict[uuid.UUID, bool] = {}  # id -> in this project
        for kind, rows in TABLES.items():
            wanted = [p.id for p in pending if p.kind == kind]
            for part in chunks(wanted):
                found = self.c.execute(
                    select(rows.c.id, rows.c.project_id).where(among(rows.c.id, part))
                )
                taken.update({r.id: r.project_id == self.project_id for r in found})
        stored_keys = self._stored_state_keys([p for p in pending if p.kind == "state"])
        for item in pending:
            if item.kind == "state":
                here = True if item.state_key in stored_keys else None
            else:
                here = taken.get(item.id)  # type: ignore[arg-type]
            if here is None:
                self.out.write.append(item)
            elif here and self.existing == "skip":
                self.out.skipped.append(item)
            elif item.kind == "state":
                self.out.exists = True
                self._conflict(item, "key", f"{item.original('key')} is already in the namespace")
            elif here:
                self.out.exists = True
                self._conflict(
                    item, "id", f"{item.original()} is already in project {self.project!r}"
                )
            else:
                self._conflict(
                    item,
                    "id",
                    f"{item.original()} is already used outside project {self.project!r}",
                )

    def _stored_state_keys(self, rows: list[Pending]) -> set[tuple[str, str]]:
        keys = {p.state_key for p in rows if p.state_key}
        stored: set[tuple[str, str]] = set()
        s = state_table.c
        for part in chunks({key for _namespace, key in keys}):
            found = self.c.execute(
                select(s.namespace, s.key).where(
                    s.project_id == self.project_id, among(s.key, part)
                )
            )
            stored |= {(r.namespace, r.key) for r in found} & keys
        return stored

    # --- conversations, messages, memories, state ---

    def _conversations(self) -> None:
        counters = self.out.counters
        for item in self.out.of_kind("conversation"):
            counters[item.id] = Counters(0, stored=False)  # type: ignore[index]
        named = {
            ref
            for item in self.out.write
            for ref in (item.refs.get("conversation_id"), item.refs.get("owner_conversation_id"))
            if ref is not None and ref not in counters
        }
        c = conversations_table.c
        for part in chunks(named):
            found = self.c.execute(
                select(c.id, c.message_count)
                .where(c.project_id == self.project_id, among(c.id, part))
                .with_for_update()
            )
            for row in found:
                counters[row.id] = Counters(row.message_count, stored=True)

    def _messages(self) -> None:
        for item in self.out.of_kind("message"):
            counters = self.out.counters.get(item.refs["conversation_id"])  # type: ignore[arg-type]
            if counters is None:
                self._missing(item, "conversation_id", "conversation")
                continue
            position = counters.message_count + 1
            given = item.row.position
            if given is not None and given != position:
                self._conflict(
                    item,
                    "position",
                    f"{given} is not the conversation's next position ({position}); leave "
                    "position out to append in line order",
                )
            self.out.positions[item.parsed.number] = position
            counters.message_count = position
            counters.added += 1
            counters.input_tokens += item.row.input_tokens
            counters.output_tokens += item.row.output_tokens

    def _memories(self) -> None:
        memories = self.out.of_kind("memory")
        in_batch = {p.id: p.refs["conversation_id"] for p in self.out.of_kind("message")}
        named = {m.refs["first_message_id"] for m in memories} - set(in_batch) - {None}
        stored: dict[uuid.UUID, uuid.UUID] = {}
        m = messages_table.c
        for part in chunks(named):
            found = self.c.execute(
                select(m.id, m.conversation_id).where(
                    m.project_id == self.project_id, among(m.id, part)
                )
            )
            stored.update({r.id: r.conversation_id for r in found})
        for item in memories:
            for name in ("conversation_id", "owner_conversation_id"):
                ref = item.refs[name]
                if ref is not None and ref not in self.out.counters:
                    self._missing(item, name, "conversation")
            message = item.refs["first_message_id"]
            if message is None:
                continue
            if message not in in_batch and message not in stored:
                self._missing(item, "first_message_id", "message")
                continue
            conversation = item.refs["conversation_id"]
            if (
                conversation is not None
                and (in_batch.get(message) or stored.get(message)) != conversation
            ):
                self.out.problems.append(
                    item.parsed.problem(
                        "first_message_id",
                        f"{item.original('first_message_id')} is not a message of conversation "
                        f"{item.original('conversation_id')}",
                        "not_found",
                    )
                )

    def _state(self) -> None:
        for item in self.out.of_kind("state"):
            owner = item.refs["owner_conversation_id"]
            if owner is not None and owner not in self.out.counters:
                self._missing(item, "owner_conversation_id", "conversation")

    # --- context versions ---

    def _contexts(self) -> None:
        """Versions and links as ``contexts.add`` makes them: a unit supersedes its name's
        latest version and, with ``supersedes``, a latest unit of another name too (a
        rename or a merge); its version is one above every version it supersedes and
        every version stored under its name."""
        units = self.out.of_kind("context")
        if not units:
            return
        in_batch = {p.id for p in units}
        named = {p.refs["supersedes"] for p in units} - in_batch - {None}
        known = self._stored_units(named)  # id -> (name, version, superseded_by)
        names = self._names({p.row.name for p in units} | {u[0] for u in known.values()}, known)
        for item in units:
            state = names[item.row.name]
            replaced = [state.latest] if state.latest is not None else []
            target = item.refs["supersedes"]
            if target is not None and target != state.latest:
                if target not in known:
                    self._missing(item, "supersedes", "context unit of the earlier lines")
                elif known[target][2] is not None or target in self.out.superseded:
                    said = f"{item.original('supersedes')} is superseded already"
                    self._conflict(item, "supersedes", said)
                else:
                    replaced.append(target)
            floor = max([state.highest, *(known[unit][1] for unit in replaced)])
            version = item.row.version if item.row.version is not None else floor + 1
            if version <= floor:
                self._conflict(
                    item,
                    "version",
                    f"{version} is not above {floor}, the highest version of "
                    f"{item.original('name')!r} and of the units it supersedes",
                )
            for unit in replaced:
                names[known[unit][0]].latest = None
                self.out.superseded[unit] = item.id  # type: ignore[assignment]
                if unit not in in_batch:
                    self.out.stored_superseded.append(unit)
            self.out.versions[item.parsed.number] = version
            state.highest, state.latest = max(state.highest, version), item.id
            known[item.id] = (item.row.name, version, None)  # type: ignore[index]

    def _stored_units(self, ids: set[Any]) -> dict[uuid.UUID, tuple[str, int, Any]]:
        x = contexts_table.c
        found: dict[uuid.UUID, tuple[str, int, Any]] = {}
        for part in chunks(ids):
            rows = self.c.execute(
                select(x.id, x.name, x.version, x.superseded_by).where(
                    x.project_id == self.project_id, among(x.id, part)
                )
            )
            found.update({r.id: (r.name, r.version, r.superseded_by) for r in rows})
        return found

    def _names(
        self, names: set[str], known: dict[uuid.UUID, tuple[str, int, Any]]
    ) -> dict[str, NameState]:
        """Each name's highest version and latest unit in the project; its units are
        added to ``known``."""
        x = contexts_table.c
        states = {name: NameState() for name in names}
        for part in chunks(names):
            rows = self.c.execute(
                select(x.id, x.name, x.version, x.superseded_by).where(
                    x.project_id == self.project_id, among(x.name, part)
                )
            )
            for row in rows:
                state = states[row.name]
                state.highest = max(state.highest, row.version)
                if row.superseded_by is None:
                    state.latest = row.id
                known[row.id] = (row.name, row.version, row.superseded_by)
        return states

    # --- event sequences ---

    def _events(self) -> None:
        events = self.out.of_kind("event")
        if not events:
            return
        last = self._lock_stream()
        for item in events:
            given = item.row.sequence
            if given is not None and given != last + 1:
                self._conflict(
                    item,
                    "sequence",
                    f"{given} is not the stream's next sequence ({last + 1}); leave sequence "
                    "out to append in line order",
                )
            last += 1
            self.out.sequences[item.parsed.number] = last
        self.out.last_sequence = last

    def _lock_stream(self) -> int:
        """The stream's last sequence, its row created and locked until the commit."""
        statement = self.backend.insert(streams_table).values(
            project_id=self.project_id, last_sequence=0
        )
        locked = statement.on_conflict_do_update(
            index_elements=["project_id"],
            set_={"last_sequence": streams_table.c.last_sequence},
        ).returning(streams_table.c.last_sequence)
        return int(self.c.execute(locked).scalar_one())
