"""The console in a real browser: Debian's chromium driven by Playwright, against a live
server on SQLite and on PostgreSQL.

One browser per test module (starting one costs seconds); one live server per module and
backend, over a store seeded with a little of everything and three keys (admin, writer,
reader). Screenshots land in ``artifacts/screenshots/`` (ignored by git).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ctxbase.server.app import create_app
from tests.conftest import IN_CI, open_store
from tests.console.sites import Site, seed
from tests.live import live_server
from tests.postgres import PostgresServer

CHROMIUM = os.environ.get("CTXBASE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CONSOLE_BACKENDS = ["sqlite-file", "postgres"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing: `make test` installs chromium (apt-get)"
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module", params=CONSOLE_BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A live console over a seeded store on each backend (one per module)."""
    with ExitStack() as stack:
        url = database(request, tmp_path_factory, stack, request.param)
        store = stack.enter_context(open_store(url, auth="required", embed_worker_interval=0))
        keys = {
            role: store.keys.create(role=role, name=f"console {role}").key
            for role in ("admin", "writer", "reader")
        }
        ids = seed(store)
        base = stack.enter_context(live_server(create_app(store=store)))
        yield Site(base, store, keys, ids, request.param)


def database(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    stack: ExitStack,
    backend: str,
) -> str:
    """The URL of a database of ``backend`` at schema head, for as long as ``stack``."""
    if backend == "sqlite-file":
        return f"sqlite:///{tmp_path_factory.mktemp('console') / 'ctxbase.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    template = request.getfixturevalue("postgres_template")
    return str(stack.enter_context(server.database(template=template)))


@pytest.fixture(scope="module")
def signed_in(browser: Any, site: Site) -> Iterator[dict[str, Any]]:
    """A browser context signed in per role, made on first use and shared by the module's
    tests (signing in costs two page loads): ``signed_in["writer"]``."""
    from tests.console.browsing import Browsing

    opened: dict[str, Browsing] = {}

    class Roles(dict[str, Any]):
        def __missing__(self, role: str) -> Browsing:
            b = opened[role] = Browsing(browser, site)
            b.sign_in(role)
            self[role] = b
            return b

    yield Roles()
    for b in opened.values():
        b.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder screenshots go to, emptied once per run."""
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS
