"""The browsable docs: /docs and /redoc need no network, and the OpenAPI document says
how to send a key, on exactly the operations that need one."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.server.app import API_PREFIX, create_app
from tests.conftest import open_store
from tests.live import live_server

PUBLIC_OPERATIONS = {("get", f"{API_PREFIX}/health"), ("get", f"{API_PREFIX}/ready")}
_REFERENCE = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.fixture(scope="module")
def keyed_store() -> Iterator[ctxbase.Store]:
    with open_store("sqlite://", auth="required") as opened:
        yield opened


@pytest.fixture(scope="module")
def document(keyed_store: ctxbase.Store) -> dict[str, Any]:
    return TestClient(create_app(store=keyed_store)).get(f"{API_PREFIX}/openapi.json").json()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_docs_page_loads_everything_from_the_server_itself(
    keyed_store: ctxbase.Store, page: str
) -> None:
    with live_server(create_app(store=keyed_store)) as base_url, httpx.Client() as http:
        html = http.get(base_url + page)
        assert html.status_code == 200
        assert "text/html" in html.headers["content-type"]
        assert "://" not in html.text, "the page names another host"
        references = [a or b for a, b in _REFERENCE.findall(html.text)]
        scripts = [ref for ref in references if ref.endswith(".js")]
        assert scripts, "the page loads no script"
        assert f"{API_PREFIX}/openapi.json" in references
        for reference in references:
            assert reference.startswith("/"), reference
            asset = http.get(base_url + reference)
            assert asset.status_code == 200, reference
            assert len(asset.content) > 1000, reference  # a real file, not a stub


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: What each page shows once its script has rendered the document.
RENDERED = {"/docs": 'class="btn authorize', "/redoc": "Health of the server and its database"}


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")
@pytest.mark.parametrize("page", sorted(RENDERED))
def test_a_docs_page_renders_in_a_browser_with_no_network(
    keyed_store: ctxbase.Store, page: str, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    with live_server(create_app(store=keyed_store)) as base_url:
        browser = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={tmp_path}",
                # every host but loopback goes to a closed port: a CDN would fail
                "--proxy-server=127.0.0.1:9",
                "--virtual-time-budget=3000",
                "--dump-dom",
                base_url + page,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert browser.returncode == 0, browser.stderr
    assert RENDERED[page] in browser.stdout


def test_the_document_declares_bearer_and_x_api_key(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["Bearer"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    assert schemes["X-API-Key"] | {"description": ""} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "",
    }


def test_every_operation_but_health_and_ready_requires_one_of_them(
    document: dict[str, Any],
) -> None:
    either = [{"Bearer": []}, {"X-API-Key": []}]
    public = set()
    for path, method, operation in _operations(document):
        if "security" in operation:
            assert operation["security"] == either, (method, path)
            assert "401" in operation["responses"], (method, path)
        else:
            public.add((method, path))
    assert public == PUBLIC_OPERATIONS


def test_the_declared_security_is_what_the_server_enforces(
    keyed_store: ctxbase.Store, document: dict[str, Any]
) -> None:
    client = TestClient(create_app(store=keyed_store), raise_server_exceptions=False)
    for path, method, operation in _operations(document):
        answer = client.request(method, _concrete(path))
        declared = "security" in operation
        assert (answer.status_code == 401) == declared, (method, path, answer.status_code)


@pytest.mark.parametrize(
    "header", [lambda key: {"Authorization": f"Bearer {key}"}, lambda key: {"X-API-Key": key}]
)
def test_either_scheme_lets_a_request_in(keyed_store: ctxbase.Store, header: Any) -> None:
    key = keyed_store.keys.create(role="reader", name="docs").key
    client = TestClient(create_app(store=keyed_store))
    assert client.get(f"{API_PREFIX}/projects", headers=header(key)).status_code == 200
    assert client.get(f"{API_PREFIX}/projects").status_code == 401


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _concrete(path: str) -> str:
    """``path`` with its parameters filled in (any value: a refused request never gets
    as far as looking them up)."""
    values = {"project": "default", "path": "agents/plan", "tenant": "default"}
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match[1], str(uuid.UUID(int=1))), path)
