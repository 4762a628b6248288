"""Retrieval quality on long multi-session conversations: ctxbase's three modes per backend,
next to a dense-only and a BM25-only baseline computed in the same run.

    python -m benchmarks.retrieval [--split dev|test] [--backends sqlite,postgresql]
        [--conversations N]

The data (``benchmarks/data/locomo10.json.gz``, see ``benchmarks/data/NOTICE.md``): ten
conversations of 19 to 32 sessions each (5,882 turns), and 1,986 questions, each labelled
with the turns that hold its answer. Each conversation is imported with its turns' ids and
times (``store.imports.rows``); each question searches its own conversation
(``filters={"conversation_id": …}``, messages only, k = 10), as an agent recalls what was
said. Reported per mode and backend: evidence recall@5 and @10 (the share of a question's
answer turns among the first k, averaged), MRR (1 / rank of the first answer turn) and
nDCG@10.

Baselines, over the same turns and questions, without ctxbase:

- dense: the same local model's embeddings of the same texts, exact cosine in numpy;
- BM25: ``rank_bm25``'s Okapi BM25 (k1 1.5, b 0.75) over lower-cased word tokens.

The first five conversations are the development split, on which every choice was made;
the last five the test split, reported once those choices were fixed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

import ctxbase
from benchmarks._servers import postgres_url, sqlite_url

DATA = Path(__file__).parent / "data" / "locomo10.json.gz"
SPLITS = {"dev": slice(0, 5), "test": slice(5, 10)}
MODES = ("vector", "text", "hybrid")
K = 10
_WORD = re.compile(r"\w+")
_EVIDENCE = re.compile(r"D\d+:\d+")


# --- the data -----------------------------------------------------------------------------


@dataclass
class Turn:
    id: str  # "<conversation>/D<session>:<turn>"
    speaker: str
    text: str
    at: datetime


@dataclass
class Question:
    text: str
    evidence: set[str]  # turn ids
    category: int


@dataclass
class Conversation:
    id: str
    speakers: tuple[str, str]
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def load(split: str, limit: int | None = None) -> list[Conversation]:
    """The split's conversations; questions whose answer turns are not all known are
    left out (a handful of labels name turns that do not exist)."""
    with gzip.open(DATA, "rt", encoding="utf-8") as source:
        samples = json.load(source)[SPLITS[split]]
    conversations = [_conversation(sample) for sample in samples]
    return conversations[:limit] if limit else conversations


def _conversation(sample: dict[str, Any]) -> Conversation:
    conversation = Conversation(sample["sample_id"], (sample["speaker_a"], sample["speaker_b"]))
    for session in sample["sessions"]:
        start = datetime.strptime(session["date_time"], "%I:%M %p on %d %B, %Y")
        for position, turn in enumerate(session["turns"]):
            text = turn["text"]
            if turn.get("blip_caption"):  # the photo a speaker shared, as a caption
                text = f"{text} [shares a photo of {turn['blip_caption']}]"
            conversation.turns.append(
                Turn(
                    f"{sample['sample_id']}/{turn['dia_id']}",
                    turn["speaker"],
                    text,
                    start + timedelta(seconds=30 * position),
                )
            )
    known = {turn.id for turn in conversation.turns}
    for qa in sample["qa"]:
        evidence = {
            f"{sample['sample_id']}/{ref}" for ref in _EVIDENCE.findall(" ".join(qa["evidence"]))
        }
        if evidence and evidence <= known:
            conversation.questions.append(Question(qa["question"], evidence, qa["category"]))
    return conversation


def import_rows(conversation: Conversation) -> Iterator[dict[str, Any]]:
    """The conversation as ctxbase import rows: turn ids and times kept, the first
    speaker as ``user``, the other as ``assistant``, each speaker's name in metadata."""
    yield {
        "kind": "conversation",
        "id": conversation.id,
        "title": f"{conversation.speakers[0]} and {conversation.speakers[1]}",
        "created_at": conversation.turns[0].at.isoformat() + "Z",
    }
    for turn in conversation.turns:
        yield {
            "kind": "message",
            "id": turn.id,
            "conversation_id": conversation.id,
            "role": "user" if turn.speaker == conversation.speakers[0] else "assistant",
            "content": turn.text,
            "metadata": {"name": turn.speaker, "turn": turn.id},
            "created_at": turn.at.isoformat() + "Z",
        }


# --- the measures -------------------------------------------------------------------------


@dataclass
class Scores:
    recall5: float = 0.0
    recall10: float = 0.0
    mrr: float = 0.0
    ndcg10: float = 0.0
    count: int = 0

    def add(self, ranked: Sequence[str], relevant: set[str]) -> None:
        self.count += 1
        self.recall5 += len(relevant.intersection(ranked[:5])) / len(relevant)
        self.recall10 += len(relevant.intersection(ranked[:K])) / len(relevant)
        first = next((i for i, item in enumerate(ranked[:K], 1) if item in relevant), None)
        self.mrr += 1 / first if first else 0.0
        gain = sum(1 / math.log2(i + 1) for i, item in enumerate(ranked[:K], 1) if item in relevant)
        ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(relevant), K) + 1))
        self.ndcg10 += gain / ideal

    def row(self) -> str:
        n = max(self.count, 1)
        return (
            f"{self.recall5 / n:>9.3f} {self.recall10 / n:>9.3f} {self.mrr / n:>6.3f}"
            f" {self.ndcg10 / n:>7.3f}"
        )


Ranker = Callable[[Conversation, Question], list[str]]


def evaluate(
    conversations: Iterable[Conversation], ranker: Ranker, ranked: list[list[str]] | None = None
) -> Scores:
    """The measures of ``ranker``; each question's ranking appended to ``ranked``."""
    scores = Scores()
    for conversation in conversations:
        for question in conversation.questions:
            found = ranker(conversation, question)
            scores.add(found, question.evidence)
            if ranked is not None:
                ranked.append(found)
    return scores


def overlap(a: list[list[str]], b: list[list[str]]) -> float:
    """Mean share of top-10 items two rankings of the same questions have in common."""
    shares = [
        1.0 if not x and not y else len(set(x) & set(y)) / max(len(x), len(y))
        for x, y in zip(a, b, strict=True)
    ]
    return sum(shares) / len(shares)


# --- baselines ----------------------------------------------------------------------------


def dense_baseline(conversations: list[Conversation], embedder: Any) -> Ranker:
    """Exact cosine over the model's embeddings of the same texts."""
    matrices = {c.id: embedder.embed([t.text for t in c.turns]) for c in conversations}
    questions = [q.text for c in conversations for q in c.questions]
    vectors = dict(zip(questions, embedder.embed(questions), strict=True))

    def rank(conversation: Conversation, question: Question) -> list[str]:
        scores = matrices[conversation.id] @ vectors[question.text]
        return [conversation.turns[i].id for i in np.argsort(-scores)[:K]]

    return rank


def bm25_baseline(conversations: list[Conversation]) -> Ranker:
    """Okapi BM25 (rank_bm25) over each conversation's turns."""
    from rank_bm25 import BM25Okapi

    def tokens(text: str) -> list[str]:
        return _WORD.findall(text.lower())

    indexes = {c.id: BM25Okapi([tokens(t.text) for t in c.turns]) for c in conversations}

    def rank(conversation: Conversation, question: Question) -> list[str]:
        scores = indexes[conversation.id].get_scores(tokens(question.text))
        return [conversation.turns[i].id for i in np.argsort(-scores)[:K]]

    return rank


# --- ctxbase ------------------------------------------------------------------------------


def ctxbase_rankers(store: ctxbase.Store, conversations: list[Conversation]) -> dict[str, Ranker]:
    """One ranker per mode over ``store``, into which the conversations are imported."""
    rows = [row for conversation in conversations for row in import_rows(conversation)]
    report = store.imports.rows(rows)
    ids = {original: str(new) for original, new in report.ids["conversation"].items()}

    def ranker(mode: str) -> Ranker:
        def rank(conversation: Conversation, question: Question) -> list[str]:
            result = store.search(
                question.text,
                kinds=["message"],
                mode=mode,
                k=K,
                # Vector mode keeps hits above a similarity threshold only (and falls back
                # to full text when none is): ranking is measured here, with no cut-off.
                threshold=0.0 if mode == "vector" else None,
                filters={"conversation_id": ids[conversation.id]},
            )
            return [hit.item.metadata["turn"] for hit in result.hits]  # type: ignore[union-attr]

        return rank

    return {mode: ranker(mode) for mode in MODES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="test")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--conversations", type=int, default=None, help="only the first N")
    args = parser.parse_args()

    from ctxbase.embeddings.local import LocalEmbedder

    conversations = load(args.split, args.conversations)
    questions = sum(len(c.questions) for c in conversations)
    turns = sum(len(c.turns) for c in conversations)
    print(
        f"split {args.split}: {len(conversations)} conversations, {turns} turns, "
        f"{questions} questions, k = {K}"
    )
    embedder = LocalEmbedder()
    header = f"{'':<28} {'recall@5':>9} {'recall@10':>9} {'MRR':>6} {'nDCG@10':>7}"
    print(header)
    baselines = {
        "dense baseline": dense_baseline(conversations, embedder),
        "BM25 baseline": bm25_baseline(conversations),
    }
    for name, ranker in baselines.items():
        print(f"{name:<28} {evaluate(conversations, ranker).row()}")
    urls = {"sqlite": sqlite_url, "postgresql": postgres_url}
    text_rankings: dict[str, list[list[str]]] = {}
    for backend in args.backends.split(","):
        with urls[backend]() as url, ctxbase.open(url, embedder=embedder) as store:
            started = time.perf_counter()
            rankers = ctxbase_rankers(store, conversations)
            loaded = time.perf_counter() - started
            for mode, ranker in rankers.items():
                ranked = text_rankings.setdefault(backend, []) if mode == "text" else None
                scores = evaluate(conversations, ranker, ranked)
                print(f"{f'ctxbase {mode}, {backend}':<28} {scores.row()}")
            print(f"  ({backend}: imported and embedded in {loaded:.0f} s)")
    if len(text_rankings) == 2:
        shared = overlap(*text_rankings.values())
        print(f"text mode top-10 overlap, SQLite and PostgreSQL: {shared:.3f}")


if __name__ == "__main__":
    main()
