"""Every console page at desktop and phone widths: a screenshot of each (in
``artifacts/screenshots/``), no sideways scrolling, no Content-Security-Policy violation,
no secret, and no serious or critical accessibility violation (axe-core).

The layout does not depend on the database, so this runs on SQLite only; the flows that
do run on both backends (``test_console_flows``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.console.browsing import Browsing
from tests.console.sites import Site

pytestmark = pytest.mark.parametrize("site", ["sqlite-file"], indirect=True)
WIDTHS = (1280, 390)


def _pages(site: Site) -> list[tuple[str, str]]:
    ids = site.ids
    return [
        ("dashboard", "/"),
        ("health", "/health"),
        ("conversations", "/p/default/conversations"),
        ("conversation", f"/p/default/conversations/{ids['conversation']}"),
        ("quality", f"/p/default/conversations/{ids['conversation']}/quality"),
        ("memories", "/p/default/memories"),
        ("memory", f"/p/default/memories/{ids['memory']}"),
        ("contexts", "/p/default/contexts"),
        ("context", f"/p/default/contexts/{ids['context']}"),
        ("state", "/p/default/state"),
        ("search", "/p/default/search?q=rounding+per+line&mode=hybrid"),
        ("events", "/p/default/events"),
        ("subscriptions", "/p/default/subscriptions"),
        ("databases", "/admin/databases"),
        ("migrations", "/admin/migrations"),
        ("tenants", "/admin/tenants"),
        ("projects", "/admin/projects"),
        ("keys", "/admin/keys"),
        ("audit", "/admin/audit"),
        ("embeddings", "/admin/embeddings"),
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_and_is_accessible(
    browser: Any, site: Site, screenshots: Path, width: int
) -> None:
    """axe-core runs at one width: its rules read the markup, which is the same at both
    (the layout changes by CSS only), and each run costs a second."""
    subscription = site.store.subscriptions.list().items[0]
    pages = [*_pages(site), ("subscription", f"/p/default/subscriptions/{subscription.id}")]
    with Browsing(browser, site, width=width) as b:
        b.goto("/login")
        b.check()
        if width == WIDTHS[0]:
            b.accessible()
        b.screenshot(screenshots, "login")
        b.sign_in("admin")
        for name, path in pages:
            response = b.goto(path)
            assert response.status == 200, (path, response.status)
            if name == "dashboard":
                b.page.wait_for_selector("#health .cards")  # loaded beside the page
            b.check()
            if width == WIDTHS[0]:
                b.accessible()
            b.screenshot(screenshots, name)


def test_error_and_created_key_pages_fit(browser: Any, site: Site, screenshots: Path) -> None:
    with Browsing(browser, site, width=390) as b:
        b.sign_in("admin")
        response = b.goto("/p/no-such-project/memories")
        assert response.status == 404
        b.check()
        b.accessible()
        b.screenshot(screenshots, "error")
        b.goto("/admin/keys")
        b.page.click("#create-key button[type=submit]")
        key = b.page.inner_text("#new-key").strip()
        b.check(allowed=key)
        b.accessible()
        b.screenshot(screenshots, "key-created")
