"""Which events a subscription wants: by type, or by meaning of what the agent needs.

A subscription with neither ``event_types`` nor ``needs`` receives every event. Otherwise
an event is delivered when its type matches one of ``event_types`` (exactly, or a family:
``deploy.*``) **or** its text is close in meaning to one of ``needs`` (cosine similarity of
their embeddings at least the threshold). Without an embedder, a need matches an event
whose text holds at least half of the need's words (stop words aside).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ctxbase.db.fulltext.stopwords import STOP_WORDS
from ctxbase.embeddings.base import EmbeddingError
from ctxbase.records import Event, Subscription

if TYPE_CHECKING:
    from ctxbase.store.store import Store

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def type_matches(patterns: Sequence[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def event_text(event: Event) -> str:
    """What an event says, for matching needs: its type in words, then its data's text."""
    words = re.sub(r"[._:/-]+", " ", event.event_type)
    return f"{words}: {_data_text(event.data)}".strip()


def _data_text(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        return " ".join(_data_text(v) for v in data.values() if v is not None)
    if isinstance(data, list):
        return " ".join(_data_text(v) for v in data)
    return "" if data is None else json.dumps(data)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS}


class Matcher:
    """Decides, for one subscription, which of a run of events to deliver."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def select(self, subscription: Subscription, events: Sequence[Event]) -> list[bool]:
        """One flag per event: deliver it or not."""
        if not subscription.event_types and not subscription.needs:
            return [True] * len(events)
        wanted = [type_matches(subscription.event_types, e.event_type) for e in events]
        if not subscription.needs:
            return wanted
        undecided = [i for i, w in enumerate(wanted) if not w]
        if undecided:
            texts = [event_text(events[i]) for i in undecided]
            for i, hit in zip(undecided, self._needs_met(subscription, texts), strict=True):
                wanted[i] = hit
        return wanted

    def _needs_met(self, subscription: Subscription, texts: list[str]) -> list[bool]:
        threshold = subscription.threshold
        if threshold is None:
            threshold = self._store.settings.subscription_threshold
        embeddings = self._store.embeddings
        if embeddings.model is not None:
            try:
                needs = _unit(embeddings.embed(list(subscription.needs), remembered_only=True))
                events = _unit(embeddings.embed(texts, remembered_only=True))
                return [bool(s) for s in (events @ needs.T).max(axis=1) >= threshold]
            except EmbeddingError:
                pass  # the provider is down: match by words rather than not at all
        needs_words = [_words(n) for n in subscription.needs]
        return [any(w and len(w & _words(t)) * 2 >= len(w) for w in needs_words) for t in texts]


def _unit(vectors: list[np.ndarray]) -> np.ndarray:
    matrix = np.vstack(vectors).astype(np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
