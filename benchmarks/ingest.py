"""Items stored with embeddings per second, next to raw ``model.encode`` on the same texts.

    python -m benchmarks.ingest [--items 2000] [--batch 64]

The local model (all-MiniLM-L6-v2) embeds on the CPU; ctxbase appends messages in
batches, embedding each batch in one model call and storing items and vectors in one
transaction. Each message is embedded after the two turns before it
(``CTXBASE_EMBED_MESSAGE_CONTEXT``), so the raw side encodes those same texts. Texts are
unique so no cache helps. The two take turns batch by batch, so noise from other work on
the machine falls on both alike. Target: ctxbase >= 0.85x raw encode.
"""

from __future__ import annotations

import argparse
import time

import ctxbase
from benchmarks._servers import postgres_url, sqlite_url
from ctxbase.config import Settings
from ctxbase.embeddings.local import LocalEmbedder
from ctxbase.store.embedding.turns import Turn, embedding_texts


def texts(count: int, salt: str) -> list[str]:
    topics = ["deploy", "invoice", "espresso", "cluster", "billing", "login", "backup", "report"]
    return [
        f"{salt} note {i}: the {topics[i % 8]} task moved to step {i % 13} after review {i}"
        for i in range(count)
    ]


def as_embedded(contents: list[str]) -> list[str]:
    """The texts ctxbase embeds for these messages of one conversation, in order."""
    window = Settings.from_values().embed_message_context
    return embedding_texts([Turn("user", c, {}) for c in contents], [], window)


def rates(
    url: str, model: LocalEmbedder, raw_items: list[str], items: list[str], batch: int
) -> tuple[float, float]:
    """Items per second of ctxbase and of raw ``model.encode``, taking turns batch by
    batch so a busy moment of the machine hits both alike."""
    with ctxbase.open(url, embedder=model) as store:
        chat = store.conversations.create()
        mine = raw = 0.0
        for start in range(0, len(items), batch):
            started = time.perf_counter()
            model.embed(raw_items[start : start + batch])
            raw += time.perf_counter() - started
            started = time.perf_counter()
            store.messages.append_many(
                chat.id, [{"role": "user", "content": t} for t in items[start : start + batch]]
            )
            mine += time.perf_counter() - started
        assert sum(store.embeddings.pending().values()) == 0
    return len(items) / mine, len(raw_items) / raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    model = LocalEmbedder()
    model.embed(["warm up the model"])
    print(f"{'backend':<11} {'ctxbase/s':>10} {'encode/s':>10} {'ratio':>6}")
    for name, database in (("sqlite", sqlite_url), ("postgresql", postgres_url)):
        with database() as url:
            # each on its own texts, so no cache helps either; the raw side encodes what
            # ctxbase embeds: each message after the turns before it (like for like)
            raw_items = as_embedded(texts(args.items, f"{name}-raw"))
            mine, raw = rates(url, model, raw_items, texts(args.items, f"{name}-store"), args.batch)
        print(f"{name:<11} {mine:>10.0f} {raw:>10.0f} {mine / raw:>6.2f}")


if __name__ == "__main__":
    main()
