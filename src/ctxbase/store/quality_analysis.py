"""What ``store.quality`` computes beyond storage: the loop detector and the health score.

**Loops.** Among a conversation's last ``window`` messages, each role's turns are taken
in position order; a turn joins the first group whose first turn it repeats (the most
similar, when several), else starts a group. Two turns repeat when both have a vector of
their own text from the active model and the cosine similarity of the vectors is at
least ``threshold`` (a message's stored vector also holds the turns before it, see
:mod:`ctxbase.store.embedding.turns`: the turn alone is embedded here, once per process
and text), or, when either lacks one, when the Jaccard similarity of their
normalised text (lower case, words only, as sets of consecutive word pairs) is at least
``text_threshold``. A group of ``min_occurrences`` turns or more is a loop. Comparing with
a group's first turn, not with any member, keeps a slow drift from chaining unrelated
turns into one loop.

**Health.** See :func:`health_score`.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, delete, insert, select, update

from ctxbase.db.schema import Conversation as ConversationRow
from ctxbase.db.schema import Embedding as EmbeddingRow
from ctxbase.db.schema import Message as MessageRow
from ctxbase.db.schema import QualityMetric as QualityMetricRow
from ctxbase.db.schema import RepetitionLoop as RepetitionLoopRow
from ctxbase.db.schema import new_id, table, utcnow
from ctxbase.embeddings import EmbeddingError
from ctxbase.records import (
    DetectedLoop,
    HealthComponent,
    HealthIn,
    HealthReport,
    LoopDetection,
    LoopDetectionIn,
)
from ctxbase.store.embedding.vectors import text_hash

if TYPE_CHECKING:
    from ctxbase.store.embedding import Embeddings
    from ctxbase.store.quality import Quality

#: Weights of the health score when none are given: metric name -> weight. Each metric's
#: value is read as a fraction from 0 (worst) to 1 (best).
DEFAULT_HEALTH_WEIGHTS: dict[str, float] = {
    "coherence": 0.3,
    "relevance": 0.25,
    "accuracy": 0.25,
    "consistency": 0.2,
}
#: Where the detector marks the loops it saved (``details["source"]``).
DETECTOR = "detect_loops"
PATTERN_CHARS = 200

messages_table = table(MessageRow)
embeddings_table = table(EmbeddingRow)
loops_table = table(RepetitionLoopRow)
metrics_table = table(QualityMetricRow)
conversations_table = table(ConversationRow)
_WORD = re.compile(r"\w+")


# --- loops --------------------------------------------------------------------------------


@dataclass
class _Turn:
    id: uuid.UUID
    position: int
    role: str
    content: str
    vector: np.ndarray | None  # unit length
    shingles: frozenset[str]


@dataclass
class _Group:
    first: _Turn
    members: list[tuple[_Turn, float, str]] = field(default_factory=list)  # turn, score, how


def detect_loops(
    quality: Quality, conversation_id: uuid.UUID, options: LoopDetectionIn, project: str
) -> LoopDetection:
    embeddings = quality._store.embeddings
    model = embeddings.model
    with quality._db.connect() as connection:
        project_id = quality._owner(connection, project, conversation_id)
        turns, in_context = _turns(connection, conversation_id, project_id, options.window, model)
    remade = set(in_context)
    _embed_alone(embeddings, [t for t in turns if t.id in remade])
    roles = [options.role] if options.role else sorted({t.role for t in turns})
    found: list[DetectedLoop] = []
    for role in roles:
        groups = _Grouping([t for t in turns if t.role == role], options).groups
        found += [_loop(g) for g in groups if len(g.members) + 1 >= options.min_occurrences]
    found.sort(key=lambda loop: loop.first_position)
    if options.save:
        found = _save(quality, conversation_id, project, found, options)
    return LoopDetection(
        conversation_id=conversation_id,
        loops=found,
        scanned=len(turns),
        with_vectors=sum(t.vector is not None for t in turns),
        model=model,
        saved=options.save,
    )


def _turns(
    connection: Connection,
    conversation_id: uuid.UUID,
    project_id: uuid.UUID,
    window: int,
    model: str | None,
) -> tuple[list[_Turn], list[uuid.UUID]]:
    """The last ``window`` turns, with their stored vectors where those are of the turn
    alone, and the ids of those whose stored vectors hold earlier turns too."""
    m, e = messages_table.c, embeddings_table.c
    rows = connection.execute(
        select(m.id, m.position, m.role, m.content)
        .where(m.conversation_id == conversation_id, m.project_id == project_id)
        .order_by(m.position.desc())
        .limit(window)
    ).all()
    vectors: dict[uuid.UUID, np.ndarray | None] = {}
    if model is not None and rows:
        stored = connection.execute(
            select(e.message_id, e.content_hash, e.vector).where(
                e.message_id.in_([r.id for r in rows]), e.model == model
            )
        )
        alone = {r.id: text_hash(r.content) for r in rows}
        # A vector made with earlier turns stands for the turn alone only once re-made.
        vectors = {
            owner: _unit(vector) if alone[owner] == digest else None
            for owner, digest, vector in stored
        }
    return [
        _Turn(r.id, r.position, r.role, r.content, vectors.get(r.id), _shingles(r.content))
        for r in reversed(rows)
    ], [r.id for r in rows if r.id in vectors and vectors[r.id] is None]


def _embed_alone(embeddings: Embeddings, turns: list[_Turn]) -> None:
    """Give ``turns``, whose stored vectors hold earlier turns too, vectors of their own
    text (when the embedder fails, they are compared by text). Turns with no stored
    vector (pending) are compared by text, as before any vector exists."""
    if embeddings.model is None or not turns:
        return
    try:
        made = embeddings.embed([t.content for t in turns])
    except EmbeddingError:
        return
    for turn, vector in zip(turns, made, strict=True):
        turn.vector = _unit(vector)


def _unit(vector: Any) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


def normalised_words(text: str) -> list[str]:
    """``text`` as the detector compares it: NFKC, lower case, words only."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def _shingles(text: str) -> frozenset[str]:
    words = normalised_words(text)
    if len(words) < 2:
        return frozenset(words)
    return frozenset(f"{a} {b}" for a, b in itertools.pairwise(words))


def text_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two sets of word pairs (1.0 for two texts without words)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class _Grouping:
    """Turns of one role grouped as they come. Each turn is compared with every group's
    first turn at once: by vectors where both have one (the turns' cosine similarities
    are one matrix product, made up front), and by text only with the groups whose first
    turn shares a word pair with it (an index of them): the others' similarity is 0."""

    def __init__(self, turns: list[_Turn], options: LoopDetectionIn) -> None:
        self.options = options
        self.groups: list[_Group] = []
        self.firsts = np.zeros(len(turns), dtype=np.intp)  # per group: its first turn
        self.has_vector = np.array([t.vector is not None for t in turns], dtype=bool)
        dims = next((t.vector.shape[0] for t in turns if t.vector is not None), 0)
        vectors = np.zeros((len(turns), dims), dtype=np.float32)
        for number, turn in enumerate(turns):
            if turn.vector is not None:
                vectors[number] = turn.vector
        self.cosines = vectors @ vectors.T
        self.index: dict[str, list[int]] = defaultdict(list)  # word pair -> groups
        for number, turn in enumerate(turns):
            self.add(number, turn)

    def add(self, number: int, turn: _Turn) -> None:
        matches = self._matches(number, turn)
        if matches:
            group, score, how = max(matches, key=lambda match: match[1])
            self.groups[group].members.append((turn, score, how))
            return
        self.index_group(len(self.groups), turn)
        self.firsts[len(self.groups)] = number
        self.groups.append(_Group(turn))

    def index_group(self, group: int, first: _Turn) -> None:
        for pair in first.shingles or {""}:  # "": the key of texts without words
            self.index[pair].append(group)

    def _matches(self, number: int, turn: _Turn) -> list[tuple[int, float, str]]:
        """(group, similarity, how) of each group whose first turn ``turn`` repeats."""
        firsts = self.firsts[: len(self.groups)]
        by_vector = self.has_vector[firsts] & self.has_vector[number]
        found = []
        if by_vector.any():
            scores = self.cosines[firsts, number]
            passing = by_vector & (scores >= self.options.threshold)
            if passing.any():
                found += [(int(i), float(scores[i]), "vector") for i in np.flatnonzero(passing)]
        sharing = {i for pair in turn.shingles or {""} for i in self.index.get(pair, ())}
        for i in sorted(sharing):
            if not by_vector[i]:
                score = text_similarity(self.groups[i].first.shingles, turn.shingles)
                if score >= self.options.text_threshold:
                    found.append((i, score, "text"))
        return found


def _loop(group: _Group) -> DetectedLoop:
    turns = [group.first, *(t for t, _, _ in group.members)]
    hows = {how for _, _, how in group.members}
    return DetectedLoop(
        role=group.first.role,
        pattern=_excerpt(group.first.content),
        message_ids=[t.id for t in turns],
        occurrences=len(turns),
        first_position=turns[0].position,
        last_position=turns[-1].position,
        similarity=round(min(score for _, score, _ in group.members), 6),
        method=hows.pop() if len(hows) == 1 else "mixed",
    )


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PATTERN_CHARS else flat[: PATTERN_CHARS - 1] + "…"


def _save(
    quality: Quality,
    conversation_id: uuid.UUID,
    project: str,
    found: list[DetectedLoop],
    options: LoopDetectionIn,
) -> list[DetectedLoop]:
    """Store ``found`` in place of the loops an earlier detection saved, in one
    transaction; the loops with their record ids."""
    l = loops_table.c  # noqa: E741
    now = utcnow()
    saved = []
    with quality._db.connect(write=True) as connection:
        project_id = quality._owner(connection, project, conversation_id)
        earlier = connection.execute(
            select(l.id, l.details).where(l.conversation_id == conversation_id)
        ).all()
        old = [r.id for r in earlier if (r.details or {}).get("source") == DETECTOR]
        if old:
            connection.execute(delete(loops_table).where(l.id.in_(old)))
        for loop in found:
            row = {
                "id": new_id(),
                "project_id": project_id,
                "conversation_id": conversation_id,
                "pattern": loop.pattern,
                "message_ids": [str(i) for i in loop.message_ids],
                "occurrences": loop.occurrences,
                "first_position": loop.first_position,
                "last_position": loop.last_position,
                "details": {
                    "source": DETECTOR,
                    "role": loop.role,
                    "method": loop.method,
                    "similarity": loop.similarity,
                    "threshold": options.threshold,
                    "text_threshold": options.text_threshold,
                },
                "created_at": now,
                "updated_at": now,
            }
            connection.execute(insert(loops_table), row)
            saved.append(loop.model_copy(update={"loop_id": row["id"]}))
    return saved


# --- health -------------------------------------------------------------------------------


def health_score(latest: dict[str, float], weights: dict[str, float]) -> float | None:
    """The health score, 0 to 100, before rounding:

    ``100 * sum(w * clamp(v)) / sum(w)`` over the weighted metrics that have a value, where ``v`` is
    a metric's latest value, ``clamp`` bounds it to 0..1 and ``w`` is its weight. A metric
    never measured counts neither way; None when no metric with a weight above 0 has a
    value. The stored score is this rounded to the nearest integer, halves up.
    """
    measured = [(w, min(max(latest[m], 0.0), 1.0)) for m, w in weights.items() if m in latest]
    total = sum(w for w, _ in measured)
    if total <= 0:
        return None
    return 100 * sum(w * v for w, v in measured) / total


def rounded(exact: float) -> int:
    """``exact`` to the nearest integer, halves up."""
    return math.floor(exact + 0.5)


def compute_health(
    quality: Quality, conversation_id: uuid.UUID, options: HealthIn, project: str
) -> HealthReport:
    weights = options.weights or DEFAULT_HEALTH_WEIGHTS
    with quality._db.connect(write=options.save) as connection:
        project_id = quality._owner(connection, project, conversation_id)
        latest = {
            metric: point
            for metric in weights
            if (point := _latest(connection, conversation_id, project_id, metric)) is not None
        }
        exact = health_score({m: v for m, (v, _) in latest.items()}, weights)
        score = None if exact is None else rounded(exact)
        saved = options.save and score is not None
        if saved:
            c = conversations_table.c
            connection.execute(
                update(conversations_table)
                .where(c.id == conversation_id, c.project_id == project_id)
                .values(health_score=score, updated_at=utcnow())
            )
    components = [
        HealthComponent(
            metric=metric,
            weight=weight,
            value=latest[metric][0] if metric in latest else None,
            measured_at=latest[metric][1] if metric in latest else None,
            score=min(max(latest[metric][0], 0.0), 1.0) if metric in latest else None,
        )
        for metric, weight in weights.items()
    ]
    return HealthReport(
        conversation_id=conversation_id,
        health_score=score,
        exact=exact,
        components=components,
        saved=saved,
    )


def _latest(
    connection: Connection, conversation_id: uuid.UUID, project_id: uuid.UUID, metric: str
) -> tuple[float, datetime] | None:
    q = metrics_table.c
    row = connection.execute(
        select(q.value, q.measured_at)
        .where(q.conversation_id == conversation_id, q.project_id == project_id, q.metric == metric)
        .order_by(q.measured_at.desc(), q.created_at.desc(), q.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (float(row.value), row.measured_at)
