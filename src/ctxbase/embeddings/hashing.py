"""A deterministic embedder from word hashing: fast, offline, lexical. For tests and demos."""

from __future__ import annotations

import hashlib
import re

import numpy as np

_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Each word adds ±1 at a hashed position; vectors are L2-normalised.

    Texts sharing words get similar vectors, so similarity behaves plausibly without a
    model. It knows nothing of meaning: use ``local`` or ``openai`` for real search.
    """

    def __init__(self, dimensions: int = 64) -> None:
        if dimensions < 2:
            raise ValueError("dimensions must be at least 2")
        self._dimensions = dimensions
        self.name = f"hash:{dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: list[str]) -> np.ndarray:
        matrix = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                matrix[row, value % self._dimensions] += 1.0 if value >> 63 else -1.0
            norm = np.linalg.norm(matrix[row])
            if norm > 0:
                matrix[row] /= norm
            else:
                matrix[row, 0] = 1.0  # no words: a fixed unit vector, never NaN
        return matrix
