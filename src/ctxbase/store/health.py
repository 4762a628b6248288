"""The services a store relies on besides its database, as ``/health`` reports them: the
embedding provider and, when deliveries use it, Redis.

Neither stops the store: writes queue their vectors while the provider is down and
deliveries are retried, so either one down makes the server *degraded*, never unusable.
The provider is not called on each check: it is *down* when its last call in this process
failed (or a local model failed to load) and it has not answered since; while down, a
check tries it again at most every :data:`PROBE_INTERVAL_SECONDS`.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field
from sqlalchemy import exists, select

from ctxbase.db.schema import Subscription, table
from ctxbase.db.urls import mask_url
from ctxbase.embeddings import Embedder
from ctxbase.errors import CtxbaseError

if TYPE_CHECKING:
    from ctxbase.store.store import Store

#: Least seconds between two tries of a provider that is down.
PROBE_INTERVAL_SECONDS = 30.0
#: Seconds Redis has to accept the connection and answer.
REDIS_TIMEOUT_SECONDS = 2.0
PROBE_TEXT = "ctxbase health check"


class EmbedderReport(BaseModel):
    """The embedding provider of the store's active model."""

    status: Literal["ok", "down", "off", "unknown"] = Field(
        description="off: no embedder configured; unknown: the database, which names the "
        "active model, cannot be read; down: its last call failed."
    )
    provider: str | None = Field(description="local, openai, hash, or a provider's class name.")
    model: str | None = Field(description="The active model, as stored beside its vectors.")
    loaded: bool = Field(description="Ready to embed in this process (a local model is in memory).")
    backlog: int | None = Field(
        description="Items still without a vector of the model (all projects); None when "
        "the database cannot be read."
    )
    error: str | None = Field(None, description="What the provider last said, while down.")
    failed_at: datetime | None = Field(None, description="When it last failed, while down.")


class RedisReport(BaseModel):
    """The Redis server of ``redis`` deliveries."""

    status: Literal["ok", "down"]
    reachable: bool
    latency_ms: float | None = Field(description="One PING's round trip.")
    error: str | None = None


def check_embedder(store: Store) -> EmbedderReport:
    """The embedding provider's state; see the module's documentation."""
    embeddings = store.embeddings
    try:
        embedder = embeddings.embedder
    except CtxbaseError:
        return EmbedderReport(
            status="unknown", provider=None, model=None, loaded=False, backlog=None
        )
    if embedder is None:
        return EmbedderReport(status="off", provider=None, model=None, loaded=False, backlog=0)
    failure = embeddings.outcomes.failure(embedder.name)
    if failure is not None and failure.age >= PROBE_INTERVAL_SECONDS:
        _probe(store, embedder)
        failure = embeddings.outcomes.failure(embedder.name)
    provider, loaded, load_error = _provider(embedder)
    error = failure.message if failure is not None else load_error
    return EmbedderReport(
        status="down" if error is not None else "ok",
        provider=provider,
        model=embedder.name,
        loaded=loaded,
        backlog=_backlog(store),
        error=error,
        failed_at=failure.at if failure is not None else None,
    )


def _probe(store: Store, embedder: Embedder) -> None:
    """Try the provider once more (the outcome is recorded by the call itself)."""
    try:
        store.embeddings.embed([f"{PROBE_TEXT} {time.time_ns()}"], embedder)
    except Exception:  # still down: recorded
        return


def _provider(embedder: Embedder) -> tuple[str, bool, str | None]:
    """The provider's kind, whether it is ready in this process, and why not if it failed."""
    from ctxbase.embeddings.local import LocalEmbedder, is_loaded, load_error

    if isinstance(embedder, LocalEmbedder):
        return "local", is_loaded(embedder.model), load_error(embedder.model)
    kind, separator, _ = embedder.name.partition(":")
    return (kind if separator else type(embedder).__name__), True, None


def _backlog(store: Store) -> int | None:
    try:
        return sum(store.embeddings.pending().values())
    except CtxbaseError:  # the database cannot be read: its own report says why
        return None


def redis_configured(store: Store) -> bool:
    """Whether the store uses Redis: ``redis_url`` is set, or a subscription delivers by
    Redis (to the default URL)."""
    if "redis_url" in store.settings.model_fields_set:
        return True
    subscriptions = table(Subscription)
    query = select(exists().where(subscriptions.c.delivery == "redis", subscriptions.c.is_active))
    try:
        with store.db.read() as connection:
            return bool(connection.execute(query).scalar())
    except CtxbaseError:
        return False


def check_redis(url: str) -> RedisReport:
    """Connect to the Redis at ``url`` and time a PING (passwords never shown)."""
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
    except ValueError as error:  # not a Redis URL
        return RedisReport(status="down", reachable=False, latency_ms=None, error=str(error))
    try:
        client.ping()  # connects
        started = time.perf_counter()
        client.ping()
        latency = (time.perf_counter() - started) * 1000
    except (redis.RedisError, OSError) as error:
        message = mask_url(f"{type(error).__name__}: {error}")
        return RedisReport(status="down", reachable=False, latency_ms=None, error=message)
    finally:
        client.close()
    return RedisReport(status="ok", reachable=True, latency_ms=round(latency, 3))
