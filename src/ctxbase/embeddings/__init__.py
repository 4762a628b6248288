"""Embedding providers behind one protocol, chosen by a spec such as ``local:all-MiniLM-L6-v2``.

=============================  ===================================================
spec                           provider
=============================  ===================================================
``local[:MODEL]``              sentence-transformers on this machine, offline
``openai:MODEL``               any OpenAI-compatible ``/v1/embeddings`` endpoint
``none``                       no vectors: search uses full text only
``hash[:DIMENSIONS]``          deterministic word hashing (tests and demos)
=============================  ===================================================
"""

from ctxbase.embeddings.base import Embedder, EmbeddingError
from ctxbase.embeddings.factory import embedder_from_spec

__all__ = ["Embedder", "EmbeddingError", "embedder_from_spec"]
