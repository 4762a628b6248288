"""How an event leaves ctxbase: a signed webhook POST, or a Redis PUBLISH.

Webhook receivers verify a delivery with :func:`verify_signature` (or its few lines in any
language): ``X-Ctxbase-Signature`` is ``sha256=`` + the hex HMAC-SHA256, keyed with the
subscription's secret, of ``"<X-Ctxbase-Timestamp>.<raw body>"``. The timestamp inside the
signed text lets receivers refuse replays of old deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from ctxbase.db.urls import mask_url
from ctxbase.records import Event, Subscription

if TYPE_CHECKING:
    from ctxbase.config import Settings
    from ctxbase.secrets import Secrets

SIGNATURE_HEADER = "X-Ctxbase-Signature"
TIMESTAMP_HEADER = "X-Ctxbase-Timestamp"
#: The delivery methods ctxbase pushes through a transport (the others are read by agents).
PUSH_METHODS = ("webhook", "redis")


class DeliveryFailed(Exception):
    """The receiver did not take the event; the message says why (never the secret)."""


def open_transport(method: str, settings: Settings) -> Transport:
    """The transport of push delivery ``method`` (one of :data:`PUSH_METHODS`), as the
    settings configure it; the caller closes it."""
    if method == "webhook":
        return WebhookTransport(settings.webhook_timeout)
    if method == "redis":
        return RedisTransport(settings.redis_url)
    raise ValueError(f"{method} delivery is not pushed")


def signing_secret(secrets: Secrets, sealed: bytes | None) -> str | None:
    """A subscription's stored secret, decrypted for signing (None: deliveries unsigned)."""
    return secrets.decrypt(sealed) if sealed is not None else None


def describe(error: BaseException) -> str:
    """An error as a dead letter records it: its kind and message, never a traceback."""
    return f"{type(error).__name__}: {error}"[:2000]


def failure_reason(error: BaseException) -> str:
    """Why sending failed: the receiver's refusal as :class:`DeliveryFailed` says it,
    anything else (a bug, an unexpected library error) described by its kind."""
    return str(error) if isinstance(error, DeliveryFailed) else describe(error)


def payload(subscription: Subscription, event: Event) -> bytes:
    """The JSON body of a delivery: the event, as the REST API shows it."""
    return event.model_dump_json().encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300
) -> bool:
    """Whether a received delivery is authentic and recent (for receivers and tests)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)


class Transport(Protocol):
    """Sends one rendered event (``body``, from :func:`payload`); raises DeliveryFailed
    when the receiver did not take it."""

    def send(
        self, subscription: Subscription, event: Event, body: bytes, secret: str | None
    ) -> None: ...

    def close(self) -> None: ...


class WebhookTransport:
    def __init__(self, timeout: float) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def send(
        self, subscription: Subscription, event: Event, body: bytes, secret: str | None
    ) -> None:
        assert subscription.target is not None
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ctxbase-webhook",
            TIMESTAMP_HEADER: str(timestamp),
            "X-Ctxbase-Event-Id": str(event.id),
            "X-Ctxbase-Sequence": str(event.sequence),
            "X-Ctxbase-Subscription": str(subscription.id),
        }
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        try:
            response = self._client.post(subscription.target, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise DeliveryFailed(mask_url(f"{type(error).__name__}: {error}")) from None
        if not response.is_success:
            raise DeliveryFailed(f"the receiver answered HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()


class RedisTransport:
    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None

    def send(
        self, subscription: Subscription, event: Event, body: bytes, secret: str | None
    ) -> None:
        import redis

        assert subscription.target is not None
        try:
            if self._client is None:
                self._client = redis.Redis.from_url(self._url, socket_timeout=10)
            self._client.publish(subscription.target, body)
        except redis.RedisError as error:
            raise DeliveryFailed(mask_url(f"Redis: {error}")) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
