"""Scan the whole test run for credentials where they must never be.

Every secret the run creates is registered as it is made: each API key the store issues,
each value encrypted at rest (webhook secrets, database passwords) and the run's secret
key. Every HTTP response body any test receives (httpx, hence ``ctxbase.Client`` and
``TestClient``), every log record and every CLI output is then searched for them. The
only sanctioned sighting is the key's own creation (``POST /keys``, ``ctxbase keys
create``, the first key ``ctxbase serve`` prints), which shows it once by design.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

_MIN_LENGTH = 12  # shorter values would match by chance
_SCAN_LIMIT = 1 << 20  # bytes of one text searched


@dataclass
class SecretScan:
    secrets: set[str] = field(default_factory=set)
    findings: list[str] = field(default_factory=list)
    scanned: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, secret: str | None) -> None:
        if secret and len(secret) >= _MIN_LENGTH and secret not in _published_examples():
            with self.lock:
                self.secrets.add(secret)

    def check(self, where: str, text: str, allowed: str | None = None) -> None:
        text = text[:_SCAN_LIMIT]
        with self.lock:
            self.scanned += 1
            leaked = [s for s in self.secrets if s != allowed and s in text]
        for secret in leaked:
            self.findings.append(f"{where}: contains a secret starting {secret[:4]!r}")


SCAN = SecretScan()


@functools.cache
def _published_examples() -> frozenset[str]:
    """Text values of the API's documented examples: public by design (the OpenAPI
    document shows them), so a test that sends one as a secret leaks nothing by echoing
    the document."""
    from ctxbase.api import OPERATIONS

    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for op in OPERATIONS.values():
        walk(op.request_example)
    return frozenset(found)


def _credential_in(secret: str) -> str | None:
    """What of an encrypted value is a credential: the whole value, except for a database
    URL (a migration job keeps its source and target encrypted), whose password is. An
    SQLite file's URL names a path, not a secret, and is printed where the store is."""
    if "://" not in secret:
        return secret
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(secret).password or None  # type: ignore[return-value]
    except ArgumentError:
        return secret


class _LogScanner(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot format cannot leak either
            return
        SCAN.check(f"log {record.name}", text)


def _patch(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ctxbase.secrets import Secrets
    from ctxbase.store.tenancy import Keys

    encrypt = Secrets.encrypt

    def registering_encrypt(self: Secrets, secret: str) -> bytes:
        SCAN.register(_credential_in(secret))
        return encrypt(self, secret)

    create = Keys.create

    @functools.wraps(create)  # keeps the signature the API parity test reads
    def registering_create(self: Keys, **fields: Any) -> Any:
        created = create(self, **fields)
        SCAN.register(created.key)
        return created

    send = httpx.Client.send

    def scanning_send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> Any:
        response = send(self, request, **kwargs)
        if not kwargs.get("stream"):
            allowed = None
            if request.method == "POST" and request.url.path.endswith("/keys"):
                with contextlib.suppress(ValueError):
                    allowed = response.json().get("key")
            SCAN.check(f"response to {request.method} {request.url.path}", response.text, allowed)
            SCAN.check(f"headers of {request.method} {request.url.path}", str(response.headers))
        return response

    invoke = CliRunner.invoke

    def scanning_invoke(self: CliRunner, app: Any, args: Any = None, *a: Any, **k: Any) -> Any:
        result = invoke(self, app, args, *a, **k)
        words = [str(w) for w in (args or [])]
        creates_key = words[:2] == ["keys", "create"]
        allowed = result.output.strip().splitlines()[-1] if creates_key and result.output else None
        SCAN.check(f"output of `ctxbase {' '.join(words)}`", result.output, allowed)
        return result

    monkeypatch.setattr(Secrets, "encrypt", registering_encrypt)
    monkeypatch.setattr(Keys, "create", registering_create)
    monkeypatch.setattr(httpx.Client, "send", scanning_send)
    monkeypatch.setattr(CliRunner, "invoke", scanning_invoke)


@pytest.fixture(scope="session", autouse=True)
def secret_scan(secret_key: str) -> Iterator[SecretScan]:
    """Active for the whole run; fails the run at its end if any secret was seen."""
    SCAN.register(secret_key)
    handler = _LogScanner(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    ctxbase_log = logging.getLogger("ctxbase")
    previous = ctxbase_log.level
    ctxbase_log.setLevel(logging.DEBUG)  # debug records are scanned too
    logging.getLogger().addHandler(handler)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _patch(monkeypatch)
        yield SCAN
    logging.getLogger().removeHandler(handler)
    ctxbase_log.setLevel(previous)
    assert not SCAN.findings, "credentials leaked:\n" + "\n".join(SCAN.findings[:50])
