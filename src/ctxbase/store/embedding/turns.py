"""What a message's vector is made of: the message as a line of its conversation's
transcript, after the turns just before it.

A turn alone is often impossible to find by meaning: "Yes, last Tuesday!" answers a
question asked a turn earlier, and who said it is in neither. So each message is embedded
as the lines

    <speaker>: <content of the message two turns before>
    <speaker>: <content of the message before>
    <speaker>: <content>

where the speaker is the message's ``metadata["name"]`` when that is a non-empty string
(a participant's name, as chat APIs carry it), else its role, and the number of earlier
turns is the setting ``embed_message_context`` (0: the content alone). Only the vector
sees them: the message is stored, indexed for full text and returned as it is. The gain,
measured on ``benchmarks/retrieval.py``, is in docs/decisions.md.

Earlier turns are read when the message is embedded; a message appended meanwhile by
another writer may be missing from its context, which makes its vector a little less
informed, never wrong. An edit re-embeds the messages whose context holds the edited one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from ctxbase.db.schema import Message, table

messages_table = table(Message)
m = messages_table.c
#: Longest line of context: a long earlier turn must not crowd the message out of the
#: model's window (local models read about 256 tokens).
_CONTEXT_CHARS = 400


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    metadata: Mapping[str, Any]

    @classmethod
    def of(cls, row: Any) -> Turn:
        """From a row, a record or an import row with role, content and metadata."""
        return cls(row.role, row.content, row.metadata or {})

    @property
    def speaker(self) -> str:
        name = self.metadata.get("name")
        return name.strip() if isinstance(name, str) and name.strip() else self.role

    def line(self, *, whole: bool) -> str:
        content = self.content if whole else _shortened(self.content)
        return f"{self.speaker}: {content}"


def embedding_texts(turns: Sequence[Turn], before: Sequence[Turn], window: int) -> list[str]:
    """The text each of ``turns`` (consecutive, in order) is embedded from; ``before``:
    the stored turns just before the first of them, oldest first."""
    if window <= 0:
        return [turn.content for turn in turns]
    earlier = list(before[-window:])
    texts = []
    for turn in turns:
        lines = [t.line(whole=False) for t in earlier] + [turn.line(whole=True)]
        texts.append("\n".join(lines))
        earlier = [*earlier, turn][-window:]
    return texts


def last_turns(
    connection: Connection,
    conversation_ids: Iterable[uuid.UUID],
    window: int,
    project_id: Any,
) -> dict[uuid.UUID, list[Turn]]:
    """The last ``window`` stored turns of each conversation of the project (its id, or
    SQL giving it: ``project_id_expression``), oldest first; another project's
    conversation has none here."""
    wanted = list(dict.fromkeys(conversation_ids))
    if window <= 0 or not wanted:
        return {}
    latest = func.row_number().over(partition_by=m.conversation_id, order_by=m.position.desc())
    ranked = (
        select(m.conversation_id, m.position, m.role, m.content, m.metadata, latest.label("n"))
        .where(m.conversation_id.in_(wanted), m.project_id == project_id)
        .subquery()
    )
    rows = connection.execute(
        select(ranked).where(ranked.c.n <= window).order_by(ranked.c.position)
    ).all()
    found: dict[uuid.UUID, list[Turn]] = {}
    for row in rows:
        found.setdefault(row.conversation_id, []).append(Turn.of(row))
    return found


def stored_texts(
    connection: Connection, message_ids: Sequence[uuid.UUID], window: int
) -> dict[uuid.UUID, str]:
    """The embedding text of stored messages, their earlier turns read in one query."""
    if not message_ids:
        return {}
    this = messages_table.alias("this")
    rows = connection.execute(
        select(this.c.id, this.c.role, this.c.content, this.c.metadata).where(
            this.c.id.in_(message_ids)
        )
    ).all()
    before: dict[uuid.UUID, list[Turn]] = {}
    if window > 0:
        earlier = connection.execute(
            select(this.c.id.label("of"), m.role, m.content, m.metadata)
            .join(
                messages_table,
                and_(
                    m.conversation_id == this.c.conversation_id,
                    m.position < this.c.position,
                    m.position >= this.c.position - window,
                ),
            )
            .where(this.c.id.in_(message_ids))
            .order_by(this.c.id, m.position)
        ).all()
        for row in earlier:
            before.setdefault(row.of, []).append(Turn.of(row))
    return {
        row.id: embedding_texts([Turn.of(row)], before.get(row.id, []), window)[0] for row in rows
    }


def _shortened(content: str) -> str:
    if len(content) <= _CONTEXT_CHARS:
        return content
    return content[: _CONTEXT_CHARS - 1].rstrip() + "…"


def texts_after_edit(
    connection: Connection,
    message_id: uuid.UUID,
    content: str | None,
    metadata: Mapping[str, Any] | None,
    window: int,
    project_id: Any,
) -> dict[uuid.UUID, str]:
    """The new embedding texts of a message of the project (as for :func:`last_turns`)
    given ``content`` and
    ``metadata`` (None: unchanged) and of the messages whose context holds it; empty when
    the message's own text would not change (nor, then, theirs)."""
    edited = connection.execute(
        select(m.conversation_id, m.position).where(m.id == message_id, m.project_id == project_id)
    ).first()
    if edited is None:
        return {}  # the write reports it missing
    rows = connection.execute(
        select(m.id, m.role, m.content, m.metadata)
        .where(
            m.conversation_id == edited.conversation_id,
            m.position >= edited.position - window,
            m.position <= edited.position + window,
        )
        .order_by(m.position)
    ).all()
    ids = [row.id for row in rows]
    at = ids.index(message_id)
    old = [Turn.of(row) for row in rows]
    new = list(old)
    new[at] = Turn(
        old[at].role,
        old[at].content if content is None else content,
        old[at].metadata if metadata is None else metadata,
    )
    before = embedding_texts(old[at : at + 1], old[:at], window)[0]
    texts = embedding_texts(new[at:], new[:at], window)
    if texts[0] == before:
        return {}
    return dict(zip(ids[at:], texts, strict=True))
