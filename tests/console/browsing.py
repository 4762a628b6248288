"""Helpers of the browser tests: signing in, and checking a page the way a person and a
screen reader meet it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.console.sites import Site
from tests.secret_scan import SCAN

#: axe-core impacts that fail a page.
FAILING_IMPACTS = ("serious", "critical")
TIMEOUT_MS = 15_000


class Browsing:
    """One browser context (its own cookies) with one page, and what it logged."""

    def __init__(self, browser: Any, site: Site, *, width: int = 1280) -> None:
        self.site = site
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))

    def _console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused" in text):
            self.problems.append(f"CSP: {text}")

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.site.console(path))
        return response

    def sign_in(self, role: str = "admin") -> None:
        self.goto("/login")
        self.page.fill("#api_key", self.site.keys[role])
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.site.url}/console/")

    def close(self) -> None:
        self.context.close()

    def __enter__(self) -> Browsing:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- checks ---

    def check(self, name: str | None = None, *, allowed: str | None = None) -> None:
        """The page as it stands: no CSP violation or script error, no secret in it, and
        no horizontal scrolling."""
        assert not self.problems, self.problems
        SCAN.check(f"console page {self.page.url}", self.page.content(), allowed)
        assert not SCAN.findings, SCAN.findings
        overflow = self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{self.page.url} scrolls sideways by {overflow}px"

    def accessible(self) -> None:
        """No serious or critical axe-core violation on the page."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.page)
        failing = [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v.get("impact") in FAILING_IMPACTS
        ]
        assert not failing, f"{self.page.url}:\n" + "\n".join(failing)

    def screenshot(self, folder: Path, name: str) -> None:
        width = self.page.viewport_size["width"]
        self.page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
