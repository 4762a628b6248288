"""Database settings in the browser: register a PostgreSQL database, test, initialize and
measure it, migrate the populated SQLite store the server runs on into it while the page
shows the progress, then activate it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

import ctxbase
from ctxbase.server.app import create_app
from tests.conftest import open_store
from tests.console.browsing import Browsing
from tests.console.sites import Site, seed
from tests.live import live_server
from tests.postgres import PostgresServer
from tests.transfer.data import cancel_first_run

#: Enough rows for a migration of many batches (the form asks for small ones).
MESSAGES = 600


@pytest.fixture(scope="module")
def sqlite_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    path = tmp_path_factory.mktemp("console-home") / "ctxbase.db"
    with ExitStack() as stack:
        store = stack.enter_context(
            open_store(f"sqlite:///{path}", auth="required", embed_worker_interval=0)
        )
        keys = {"admin": store.keys.create(role="admin", name="console admin").key}
        ids = seed(store)
        busy = store.conversations.create(title="Long one")
        store.messages.append_many(
            busy.id, [{"role": "user", "content": f"line {n}"} for n in range(MESSAGES)]
        )
        base = stack.enter_context(live_server(create_app(store=store)))
        yield Site(base, store, keys, {**ids, "path": path})


@pytest.fixture
def empty_postgres(postgres: PostgresServer) -> Iterator[str]:
    with postgres.database() as url:
        yield url


def _add_postgres(b: Browsing, url: str) -> None:
    """Register the database at ``url`` through the form. The test server trusts local
    connections, so a password typed here is stored (encrypted) without being needed:
    the pages must never show it all the same."""
    parts = make_url(url)
    socket = parts.query.get("host")
    b.goto("/admin/databases")
    b.page.fill("#pg-name", "production")
    b.page.fill("#pg-host", str(socket or parts.host or "localhost"))
    if parts.port:
        b.page.fill("#pg-port", str(parts.port))
    b.page.fill("#pg-database", parts.database or "")
    b.page.fill("#pg-user", parts.username or "")
    b.page.fill("#pg-password", parts.password or "typed-in-the-console-form-7f3a")
    b.page.click("#add-postgresql button[type=submit]")
    b.page.wait_for_selector("h1:has-text('production')")


def _add_sqlite(b: Browsing, path: Path) -> None:
    b.goto("/admin/databases")
    b.page.fill("#sq-name", "development")
    b.page.fill("#sq-path", str(path))
    b.page.click("#add-sqlite button[type=submit]")
    b.page.wait_for_selector("h1:has-text('development')")


def test_configure_migrate_and_activate_postgresql(
    browser: Any,
    sqlite_site: Site,
    empty_postgres: str,
    screenshots: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = sqlite_site
    # The migration is stopped part-way (as by its Cancel button), then resumed from its page.
    cancel_first_run(monkeypatch, "messages", 200)
    with Browsing(browser, site) as b:
        b.sign_in("admin")
        _add_sqlite(b, site.ids["path"])
        _add_postgres(b, empty_postgres)
        assert "set (never shown)" in b.page.inner_text("dl.facts")

        b.page.click("text=Test connection")
        report = b.page.wait_for_selector("#db-report")
        assert "passed" in report.inner_text()
        assert "PostgreSQL" in b.page.inner_text("#db-result") or re.search(
            r"\d+\.\d+", b.page.inner_text("#db-result")
        )
        assert "available" in b.page.inner_text("#db-result")  # pgvector, not enabled yet

        b.page.check("#require-pgvector")
        b.page.click("text=Initialize schema")
        b.page.wait_for_selector("#db-result h2:has-text('Initialize')")
        assert "passed" in b.page.inner_text("#db-report")
        assert "installed" in b.page.inner_text("#db-result")  # pgvector enabled

        b.page.click("text=Statistics")
        b.page.wait_for_selector("#db-statistics")
        assert "messages" in b.page.inner_text("#db-statistics")
        b.check()
        b.screenshot(screenshots, "database")

        b.goto("/admin/migrations")
        b.page.select_option("#source-config", "development")
        b.page.select_option("#target-config", "production")
        b.page.fill("#batch", "100")
        # The server records its own actions (this resume among them) in the audit log of
        # the database it serves, which is the source here: that table would change under
        # the copy between its two runs, and the verification would rightly say so.
        b.page.click("#start-migration summary")
        b.page.uncheck("input[name=tables][value=audit_log]")
        b.page.click("#start-migration button[type=submit]")
        b.page.wait_for_url(re.compile(r".*/admin/jobs/[0-9a-f-]{36}$"))
        job_page = b.page.url
        b.page.wait_for_selector("#job[data-finished=true]", timeout=60_000)
        assert "cancelled" in b.page.inner_text("#job-status")
        b.check()
        b.screenshot(screenshots, "migration-stopped")
        b.page.click("#resume-migration button[type=submit]")  # into the same configuration
        b.page.wait_for_selector(".flash.ok")
        assert b.page.url == job_page  # the same job goes on
        b.page.wait_for_selector("#job[data-finished=true]", timeout=60_000)
        assert b.page.inner_text("#job-percent") == "100.0%"
        assert "completed" in b.page.inner_text("#job-status")
        assert b.page.inner_text("#verification") == "passed"
        b.check()
        b.screenshot(screenshots, "migration")

        b.goto("/admin/databases")
        b.page.click("text=production")
        b.page.once("dialog", lambda dialog: dialog.accept())
        b.page.click("button:has-text('Activate')")
        b.page.wait_for_selector(".flash.ok")
        assert "serving" in b.page.inner_text("h1")
        b.goto("/")
        b.page.wait_for_selector("#health .cards")
        assert "postgresql" in b.page.inner_text("#health").lower()
        b.goto("/p/default/conversations")
        assert "Long one" in b.page.inner_text("main")

    with ctxbase.open(empty_postgres, embedder="hash:64") as migrated:
        long_one = next(c for c in migrated.conversations.list().items if c.title == "Long one")
        assert long_one.message_count == MESSAGES
