"""``store.recall(query, max_tokens=…)``: what to put in a prompt, within a token budget;
and ``store.stats()``: what a project holds.

Recall is the call an agent makes before each model call. It runs one search over the
chosen kinds and, when a conversation is named, takes that conversation's latest
messages; it drops duplicates (the same record twice, or the same text under two
records), and fills the budget in this order:

1. the conversation's latest messages, newest first, up to half the budget when the
   search found anything (the whole budget otherwise);
2. the search hits in rank order with what is left, none taking more than half the
   budget when there are several. An item too long for its room is cut to fit when at
   least :data:`MIN_PIECE_TOKENS` of it remain, else skipped for a shorter one further
   down.

The answer lists the items in the order of its prompt-ready ``text``: memories, context
units and messages found by the search (each by score), then the recent messages in
conversation order. Every item names its source (``memory:<id>``, ``context:<id>``,
``message:<id>``).

Tokens are estimated, not counted with a model's tokenizer (which one would it be?):
ASCII characters count a quarter token each and every other character a whole one,
rounded up per piece (:func:`estimate_tokens`). English runs at about four characters a
token in the common tokenizers, and other scripts at one to three characters, so the
estimate errs on the safe side of a budget.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from ctxbase.db.schema import ContextUnit as ContextRow
from ctxbase.db.schema import Conversation as ConversationRow
from ctxbase.db.schema import Event as EventRow
from ctxbase.db.schema import Memory as MemoryRow
from ctxbase.db.schema import Message as MessageRow
from ctxbase.db.schema import StateEntry as StateRow
from ctxbase.db.schema import table, utcnow
from ctxbase.records import Message, SearchFilters, SearchHit
from ctxbase.records.recall import ProjectStats, RecallItem, RecallRequest, RecallResult
from ctxbase.store.base import DEFAULT_PROJECT, Domain, given, parse

#: An item is cut to fit the budget only if at least this many tokens of it would remain.
MIN_PIECE_TOKENS = 24
_ELLIPSIS = " …"
SECTIONS = (
    ("memory", "search", "Memories:"),
    ("context", "search", "Context:"),
    ("message", "search", "Messages:"),
    ("message", "recent", "Recent messages:"),
)


def estimate_tokens(text: str) -> int:
    """Estimated tokens of ``text``: ASCII characters / 4 plus one per other character,
    rounded up."""
    other = len(text) - len(text.encode("ascii", "ignore"))
    return math.ceil((len(text) - other) / 4) + other


def cut_to_tokens(text: str, tokens: int) -> str:
    """The longest start of ``text`` (at a word boundary when one is near), marked with
    an ellipsis, whose estimate is at most ``tokens``; empty when nothing fits."""
    if estimate_tokens(text) <= tokens:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        middle = (low + high + 1) // 2
        if estimate_tokens(text[:middle] + _ELLIPSIS) <= tokens:
            low = middle
        else:
            high = middle - 1
    if low == 0:
        return ""
    cut = text[:low]
    space = cut.rfind(" ", int(low * 0.8))
    if space > 0:
        cut = cut[:space]
    return cut.rstrip() + _ELLIPSIS


@dataclass(frozen=True)
class _Candidate:
    kind: str
    id: uuid.UUID
    reason: str
    score: float | None
    text: str
    created_at: datetime
    title: str | None
    order: float  # position in its section
    truncated: bool = False

    @property
    def source(self) -> str:
        return f"{self.kind}:{self.id}"

    def line(self, text: str | None = None) -> str:
        label = f"{self.source} {self.title}" if self.title else self.source
        return f"- [{label}] {self.text if text is None else text}\n"


class Recall(Domain):
    """``store.recall(query, …)``."""

    def __call__(
        self,
        query: str,
        *,
        max_tokens: int = 2000,
        kinds: list[str] | None = None,
        mode: str = "hybrid",
        k: int = 20,
        threshold: float | None = None,
        filters: SearchFilters | dict[str, Any] | None = None,
        conversation_id: uuid.UUID | str | None = None,
        recent_messages: int = 10,
        project: str = DEFAULT_PROJECT,
    ) -> RecallResult:
        request = parse(RecallRequest, {"query": query, **given(RecallRequest, locals())})
        recent = self._recent(request, project)
        found = self._store.search(
            request.query,
            kinds=list(request.kinds),
            mode=request.mode,
            k=request.k,
            threshold=request.threshold,
            filters=request.filters,
            project=project,
        )
        hits = [_from_hit(rank, hit) for rank, hit in enumerate(found.hits)]
        seen: set[Any] = set()
        chosen, omitted = _fill(request.max_tokens, _unique(recent, seen), _unique(hits, seen))
        items, text = _render(chosen)
        return RecallResult(
            items=items,
            text=text,
            tokens=estimate_tokens(text),
            max_tokens=request.max_tokens,
            omitted=omitted,
            fallback=found.fallback,
        )

    def _recent(self, request: RecallRequest, project: str) -> list[_Candidate]:
        """The conversation's latest messages, newest first."""
        if request.conversation_id is None or request.recent_messages == 0:
            return []
        store = self._store
        count = store.conversations.get(request.conversation_id, project=project).message_count
        wanted = min(request.recent_messages, count)
        if wanted == 0:
            return []
        messages: list[Message] = []
        after = count - wanted
        while len(messages) < wanted:
            page = store.messages.list(
                request.conversation_id, after=after, limit=min(wanted, 1000), project=project
            )
            if not page.items:
                break
            messages.extend(page.items)
            after = page.items[-1].position
        return [_from_message(message) for message in reversed(messages[-wanted:])]


def _from_hit(rank: int, hit: SearchHit) -> _Candidate:
    item: Any = hit.item
    title = None
    if hit.kind == "context":
        title = item.name
    elif hit.kind == "message":
        title = f"{item.role} #{item.position}"
    return _Candidate(
        hit.kind, hit.id, "search", hit.score, item.content, item.created_at, title, rank
    )


def _from_message(message: Message) -> _Candidate:
    return _Candidate(
        "message",
        message.id,
        "recent",
        None,
        message.content,
        message.created_at,
        f"{message.role} #{message.position}",
        message.position,
    )


def _fingerprint(text: str) -> str:
    return " ".join(text.split()).casefold()


def _unique(candidates: list[_Candidate], seen: set[Any]) -> list[_Candidate]:
    """The candidates without a record or a text met before (the first one is kept)."""
    kept = []
    for candidate in candidates:
        keys = {(candidate.kind, candidate.id), _fingerprint(candidate.text)}
        if not keys & seen:
            seen.update(keys)
            kept.append(candidate)
    return kept


def _header(kind: str, reason: str) -> str:
    return next(title for k, r, title in SECTIONS if (k, r) == (kind, reason))


class _Budget:
    """The tokens left, and the sections already opened (a section's title costs once)."""

    def __init__(self, tokens: int) -> None:
        self.left = tokens
        self.opened: set[tuple[str, str]] = set()
        self.chosen: list[_Candidate] = []

    def cost(self, candidate: _Candidate, text: str | None = None) -> int:
        section = (candidate.kind, candidate.reason)
        title = 0 if section in self.opened else estimate_tokens(f"\n{_header(*section)}\n")
        return title + estimate_tokens(candidate.line(text))

    def take(self, candidate: _Candidate, *, share: int | None = None, cut: bool = True) -> bool:
        """Add ``candidate`` whole if it fits in what is left and in ``share`` tokens,
        else cut to fit (``cut``) when :data:`MIN_PIECE_TOKENS` of its text would stay."""
        limit = self.left if share is None else min(self.left, share)
        if self.cost(candidate) <= limit:
            return self._add(candidate)
        room = limit - self.cost(candidate, "")
        while cut and room >= MIN_PIECE_TOKENS:
            text = cut_to_tokens(candidate.text, room)
            if text and self.cost(candidate, text) <= limit:
                return self._add(replace(candidate, text=text, truncated=True))
            room -= 1
        return False

    def _add(self, candidate: _Candidate) -> bool:
        self.left -= self.cost(candidate)
        self.opened.add((candidate.kind, candidate.reason))
        self.chosen.append(candidate)
        return True


def _fill(
    budget: int, recent: list[_Candidate], hits: list[_Candidate]
) -> tuple[list[_Candidate], int]:
    """The candidates kept within ``budget``, and how many were left out."""
    half = budget // 2
    fill = _Budget(half if hits and recent else budget)
    for index, candidate in enumerate(recent):  # newest first, without a gap in the thread
        if not fill.take(candidate, cut=index == 0):
            break
    fill.left += budget - half if hits and recent else 0
    for candidate in hits:  # one long hit may not crowd out all the others
        fill.take(candidate, share=half if len(hits) > 1 else None)
    return fill.chosen, len(recent) + len(hits) - len(fill.chosen)


def _render(chosen: list[_Candidate]) -> tuple[list[RecallItem], str]:
    """The items in the text's order, and the text."""
    items: list[RecallItem] = []
    blocks: list[str] = []
    for kind, reason, title in SECTIONS:
        section = sorted(
            (c for c in chosen if (c.kind, c.reason) == (kind, reason)), key=lambda c: c.order
        )
        if not section:
            continue
        blocks.append(f"{title}\n" + "".join(c.line() for c in section))
        items.extend(
            RecallItem(
                kind=c.kind,
                id=c.id,
                source=c.source,
                reason=c.reason,
                score=c.score,
                text=c.text,
                tokens=estimate_tokens(c.line()),
                truncated=c.truncated,
                created_at=c.created_at,
                title=c.title,
            )
            for c in section
        )
    return items, "\n".join(blocks).rstrip("\n")


class Stats(Domain):
    """``store.stats()``."""

    def __call__(self, *, project: str = DEFAULT_PROJECT) -> ProjectStats:
        now = utcnow()
        with self._db.read() as connection:
            project_id = self._project_id(connection, project)
            messages = table(MessageRow)
            counts = {
                name: int(
                    connection.execute(
                        select(func.count())
                        .select_from(rows)
                        .where(rows.c.project_id == project_id, *conditions)
                    ).scalar_one()
                )
                for name, rows, conditions in _counted(now)
            }
            tokens = connection.execute(
                select(
                    func.coalesce(func.sum(messages.c.input_tokens), 0),
                    func.coalesce(func.sum(messages.c.output_tokens), 0),
                ).where(messages.c.project_id == project_id)
            ).one()
            events = table(EventRow)
            last = connection.execute(
                select(func.coalesce(func.max(events.c.sequence), 0)).where(
                    events.c.project_id == project_id
                )
            ).scalar_one()
        return ProjectStats(
            project=project,
            **counts,
            events=int(last),
            input_tokens=int(tokens[0]),
            output_tokens=int(tokens[1]),
        )


def _counted(now: datetime) -> list[tuple[str, Any, list[Any]]]:
    contexts, memories, state = table(ContextRow), table(MemoryRow), table(StateRow)
    return [
        ("conversations", table(ConversationRow), []),
        ("messages", table(MessageRow), []),
        ("context_units", contexts, [contexts.c.superseded_by.is_(None)]),
        ("memories", memories, [or_(memories.c.expires_at.is_(None), memories.c.expires_at > now)]),
        ("state_entries", state, [or_(state.c.expires_at.is_(None), state.c.expires_at > now)]),
    ]


__all__ = ["Recall", "Stats", "cut_to_tokens", "estimate_tokens"]
