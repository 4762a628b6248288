"""The run-wide credential scan itself: it must see what it is meant to see."""

from __future__ import annotations

import logging

import httpx
import pytest

import ctxbase
from tests.secret_scan import SCAN, SecretScan


@pytest.fixture
def planted(secret_scan: SecretScan) -> str:
    """A registered secret; findings about it are removed afterwards (they are planted)."""
    secret = "planted-secret-0123456789"
    SCAN.register(secret)
    before = len(SCAN.findings)
    yield secret
    del SCAN.findings[before:]
    SCAN.secrets.discard(secret)


def test_responses_logs_and_cli_output_are_scanned(planted: str) -> None:
    before = len(SCAN.findings)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=f"oops {planted}"))
    with httpx.Client(transport=transport) as client:
        client.get("http://example.invalid/leak")
    logging.getLogger("ctxbase.test").error("connecting with %s", planted)
    assert len(SCAN.findings) == before + 2
    assert "response to GET /leak" in SCAN.findings[-2]
    assert planted not in "".join(SCAN.findings)  # the report does not repeat the secret


def test_encrypted_values_and_issued_keys_are_registered(store: ctxbase.Store) -> None:
    store.subscriptions.create(
        agent_id="a", delivery="webhook", target="http://127.0.0.1:9/", secret="w" * 24
    )
    key = store.keys.create(role="reader").key
    assert "w" * 24 in SCAN.secrets and key in SCAN.secrets
