"""Providers: the OpenAI-compatible client against a real local HTTP server, the local model,
word hashing, and specs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

from ctxbase.embeddings import EmbeddingError, embedder_from_spec
from ctxbase.embeddings.hashing import HashEmbedder
from ctxbase.embeddings.openai import OpenAIEmbedder
from ctxbase.errors import ConfigurationError
from tests.live import live_server

SECRET = "sk-test-not-a-real-key"


class EmbeddingsServer:
    """Speaks the OpenAI embeddings API; can fail on purpose."""

    def __init__(self) -> None:
        self.failures_left = 0
        self.failure_status = 503
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/v1/embeddings")(self.embeddings)

    async def embeddings(
        self, request: Request, authorization: str | None = Header(None)
    ) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        if authorization != f"Bearer {SECRET}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        if self.failures_left:
            self.failures_left -= 1
            return JSONResponse({"error": {"message": "busy"}}, status_code=self.failure_status)
        dimensions = body.get("dimensions", 16)
        vectors = HashEmbedder(dimensions).embed(body["input"])
        data = [
            {"object": "embedding", "index": i, "embedding": v.tolist()}
            for i, v in enumerate(vectors)
        ]
        data.reverse()  # the API may answer out of order; clients sort by index
        return JSONResponse({"object": "list", "data": data, "model": body["model"]})


@pytest.fixture
def make() -> Iterator[Any]:
    """Builds OpenAIEmbedders and closes them after the test."""
    made: list[OpenAIEmbedder] = []

    def build(*args: Any, **kwargs: Any) -> OpenAIEmbedder:
        made.append(OpenAIEmbedder(*args, **kwargs))
        return made[-1]

    yield build
    for embedder in made:
        embedder.close()


@pytest.fixture
def server() -> Iterator[tuple[EmbeddingsServer, str]]:
    fake = EmbeddingsServer()
    with live_server(fake.app) as url:
        yield fake, f"{url}/v1"


def test_openai_compatible_embeddings(server: tuple[EmbeddingsServer, str], make: Any) -> None:
    fake, base_url = server
    embedder = make("tiny", base_url=base_url, api_key=SECRET, batch_size=2, dimensions=8)
    texts = ["alpha", "beta", "gamma"]
    matrix = embedder.embed(texts)
    assert matrix.shape == (3, 8) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, HashEmbedder(8).embed(texts), rtol=1e-6)
    assert [len(r["input"]) for r in fake.requests] == [2, 1]  # batched
    assert all(r["dimensions"] == 8 and r["model"] == "tiny" for r in fake.requests)
    assert embedder.name == "openai:tiny@8" and embedder.dimensions == 8
    assert SECRET not in repr(embedder)


def test_retries_with_backoff_then_succeeds(
    server: tuple[EmbeddingsServer, str], make: Any
) -> None:
    fake, base_url = server
    fake.failures_left = 2
    embedder = make("tiny", base_url=base_url, api_key=SECRET, backoff=0.01)
    assert embedder.embed(["x"]).shape == (1, 16)
    assert len(fake.requests) == 3


def test_gives_up_after_retries_and_never_retries_a_refusal(
    server: tuple[EmbeddingsServer, str], make: Any
) -> None:
    fake, base_url = server
    fake.failures_left = 10
    embedder = make("tiny", base_url=base_url, api_key=SECRET, max_retries=2, backoff=0.01)
    with pytest.raises(EmbeddingError) as caught:
        embedder.embed(["x"])
    assert len(fake.requests) == 3 and "503" in caught.value.message
    wrong_key = make("tiny", base_url=base_url, api_key="sk-wrong", backoff=0.01)
    with pytest.raises(EmbeddingError) as caught:
        wrong_key.embed(["x"])
    assert len(fake.requests) == 4  # 401 is final
    assert "sk-wrong" not in str(caught.value)


def test_unreachable_endpoint(make: Any) -> None:
    from tests.live import free_port

    embedder = make(
        "tiny",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        max_retries=1,
        backoff=0.01,
        timeout=2,
    )
    with pytest.raises(EmbeddingError, match="unreachable"):
        embedder.embed(["x"])


def test_specs(make: Any) -> None:
    assert embedder_from_spec("none") is None
    assert embedder_from_spec("hash:12").dimensions == 12  # type: ignore[union-attr]
    assert embedder_from_spec("local").name == "local:all-MiniLM-L6-v2"  # type: ignore[union-attr]
    openai = embedder_from_spec("openai:text-embedding-3-small", api_key="k")
    assert isinstance(openai, OpenAIEmbedder) and openai.dimensions == 1536
    openai.close()
    for bad in ("openai", "hash:x", "magic:1"):
        with pytest.raises(ConfigurationError):
            embedder_from_spec(bad)


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    first, second = HashEmbedder(32).embed(["Same words here", "same WORDS here"])
    np.testing.assert_array_equal(first, second)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-6
    (empty,) = HashEmbedder(32).embed([""])
    assert np.isfinite(empty).all() and float(np.linalg.norm(empty)) == 1.0


@pytest.mark.model
def test_local_model_offline() -> None:
    embedder = embedder_from_spec("local")
    assert embedder is not None
    vectors = embedder.embed(
        [
            "I always start my day with an espresso",
            "What does the user drink in the morning?",
            "The quarterly tax report is due in April",
        ]
    )
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    coffee, question, tax = vectors
    assert float(coffee @ question) > float(tax @ question) + 0.1
