"""The embedder protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ctxbase.errors import CtxbaseError


class EmbeddingError(CtxbaseError):
    """Raised when an embedding provider fails (unreachable, refused, malformed answer)."""

    code = "embedding_error"
    http_status = 503


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors; one instance per model."""

    #: Stable model name stored beside each vector, e.g. ``local:all-MiniLM-L6-v2``.
    name: str

    @property
    def dimensions(self) -> int:
        """Length of every vector."""
        ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """A ``len(texts) x dimensions`` float32 matrix, one row per text, in order."""
        ...
