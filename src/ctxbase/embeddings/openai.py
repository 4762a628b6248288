"""Any OpenAI-compatible ``/v1/embeddings`` endpoint: OpenAI, Ollama, vLLM, LiteLLM, …"""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np

from ctxbase.embeddings.base import EmbeddingError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIEmbedder:
    """Batches texts, retries with exponential backoff, never logs the key."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 256,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}" + (f"@{dimensions}" if dimensions else "")
        self._requested_dimensions = dimensions
        self._dimensions = dimensions or _KNOWN_DIMENSIONS.get(model)
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model!r}, base_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self._dimensions = int(self.embed(["dimensions"]).shape[1])
        return self._dimensions

    def embed(self, texts: list[str]) -> np.ndarray:
        batches = [
            self._embed_batch(texts[start : start + self.batch_size])
            for start in range(0, len(texts), self.batch_size)
        ]
        if not batches:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        matrix = np.vstack(batches).astype(np.float32)
        self._dimensions = matrix.shape[1]
        return matrix

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": texts}
        if self._requested_dimensions:
            body["dimensions"] = self._requested_dimensions
        response = self._post(body)
        try:
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            matrix = np.array([item["embedding"] for item in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as e:
            raise EmbeddingError(f"Malformed answer from the embeddings endpoint: {e}") from e
        if matrix.ndim != 2 or matrix.shape[0] != len(texts):
            raise EmbeddingError(
                f"The embeddings endpoint returned {matrix.shape[0]} vectors for {len(texts)} texts"
            )
        return matrix

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._http.post("/embeddings", json=body)
            except httpx.TransportError as e:
                last_problem = f"unreachable ({e.__class__.__name__})"
                continue
            if response.status_code < 400:
                return response
            last_problem = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code not in _RETRY_STATUS:
                break
        raise EmbeddingError(
            f"The embeddings endpoint failed for model {self.model!r}: {last_problem}",
            hint="check CTXBASE_EMBEDDER_BASE_URL, the API key and the model name",
        )
