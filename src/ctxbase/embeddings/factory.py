"""Embedders from a spec string, as in ``CTXBASE_EMBEDDER=local:all-MiniLM-L6-v2``."""

from __future__ import annotations

from typing import Any

from ctxbase.embeddings.base import Embedder
from ctxbase.errors import ConfigurationError


def embedder_from_spec(spec: str, **options: Any) -> Embedder | None:
    """The embedder a spec names; None for ``none``.

    ``options`` go to the provider: ``base_url``, ``api_key``, ``dimensions``,
    ``batch_size``, ``timeout``, ``max_retries`` for ``openai``; ``batch_size`` for ``local``.
    """
    kind, _, argument = spec.strip().partition(":")
    kind = kind.lower()
    if kind == "none":
        return None
    if kind == "local":
        from ctxbase.embeddings.local import DEFAULT_MODEL, LocalEmbedder

        keep = {k: v for k, v in options.items() if k == "batch_size" and v}
        return LocalEmbedder(argument or DEFAULT_MODEL, **keep)
    if kind == "openai":
        from ctxbase.embeddings.openai import OpenAIEmbedder

        if not argument:
            raise ConfigurationError("openai needs a model: openai:text-embedding-3-small")
        return OpenAIEmbedder(argument, **{k: v for k, v in options.items() if v is not None})
    if kind == "hash":
        from ctxbase.embeddings.hashing import HashEmbedder

        try:
            return HashEmbedder(int(argument or 64))
        except ValueError as e:
            raise ConfigurationError(f"Invalid embedder spec {spec!r}: {e}") from e
    raise ConfigurationError(
        f"Unknown embedder {spec!r}",
        hint="use local[:MODEL], openai:MODEL, hash[:DIMENSIONS] or none",
    )
