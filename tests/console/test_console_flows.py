"""What a person does in the console, in a real browser, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from sqlalchemy import insert

from ctxbase.db.schema import new_id, utcnow
from ctxbase.store.subscriptions import dead_letters_table
from ctxbase.store.tenancy import KEY_PREFIX
from tests.console.browsing import Browsing
from tests.console.sites import Site
from tests.events.receiver import webhook_receiver


def test_sign_in_exchanges_the_key_for_a_strict_cookie(browser: Any, site: Site) -> None:
    with Browsing(browser, site) as b:
        response = b.goto("/")
        assert "/console/login" in b.page.url
        headers = response.all_headers()
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp

        b.page.fill("#api_key", "ctx_wrong_key_that_does_not_exist")
        b.page.click("button[type=submit]")
        assert "not valid" in b.page.inner_text(".flash.error")
        assert b.page.input_value("#api_key") == ""  # the key typed is never sent back

        b.sign_in("writer")
        assert "Dashboard" in b.page.inner_text("h1")
        cookie = next(c for c in b.context.cookies() if c["name"] == "ctxbase_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/console" and cookie["expires"] > time.time()
        assert site.keys["writer"] not in cookie["value"]
        b.check()

        b.page.click("text=Sign out")
        b.page.wait_for_url(re.compile(r".*/console/login.*"))
        assert "signed out" in b.page.inner_text(".flash")
        b.context.add_cookies([cookie])  # the old cookie no longer opens anything
        b.goto("/")
        assert "/console/login" in b.page.url


def test_browse_a_conversation_and_its_messages(signed_in: Any, site: Site) -> None:
    b = signed_in["reader"]
    b.goto("/p/default/conversations")
    row = b.page.locator("table.rows tbody tr", has_text="Billing drift")
    assert "12 / 9" in row.inner_text().replace(",", "")  # tokens in / out
    row.locator("a").click()
    b.page.wait_for_selector("ol.messages")
    messages = b.page.locator("li.message")
    assert messages.count() == 3
    assert "Rounding happens per line" in messages.nth(2).inner_text()
    assert "finish: stop" in messages.nth(2).inner_text()
    b.page.click("text=Thinking")
    assert b.page.is_visible("text=Look at the rounding mode first.")
    b.page.wait_for_selector("#quality h3")  # loaded beside the page
    quality = b.page.inner_text("#quality")
    assert "coherence" in quality and "0.820" in quality
    assert "Says per line, then per total" in quality and "billing/rounding.md" in quality
    b.check()


def test_edit_a_memory_and_see_the_edit_in_its_history(signed_in: Any, site: Site) -> None:
    memory_id = site.ids["memory"]
    b = signed_in["writer"]
    b.goto("/p/default/memories")
    b.page.click("text=The user drinks green tea")
    b.page.fill("#content", "The user drinks black coffee in the morning")
    b.page.fill("#importance", "0.85")
    b.page.click("#edit-memory button[type=submit]")
    b.page.wait_for_selector(".flash.ok")
    latest = b.page.locator("#history > li").first
    assert "update" in latest.inner_text()
    assert "console (key:" in latest.inner_text()
    assert latest.locator("del").first.inner_text().strip() in ("green tea", "green")
    assert "black coffee" in " ".join(latest.locator("ins").all_inner_texts())
    assert "0.85" in latest.inner_text()
    b.check()
    stored = site.store.memories.get(memory_id)
    assert stored.content == "The user drinks black coffee in the morning"
    assert stored.importance == 0.85


def test_a_memorys_expiry_is_removed_from_its_edit_form(signed_in: Any, site: Site) -> None:
    memory = site.store.memories.add("Remind the user of the invoice run", ttl_seconds=86_400)
    b = signed_in["writer"]
    b.goto(f"/p/default/memories/{memory.id}")
    b.page.check("#never-expires")
    b.page.click("#edit-memory button[type=submit]")
    b.page.wait_for_selector(".flash.ok")
    facts = b.page.inner_text("dl.facts")
    assert re.search(r"Expires \(UTC\)\s+never", facts), facts
    assert b.page.locator("#never-expires").count() == 0  # nothing left to remove
    latest = b.page.locator("#history > li").first.inner_text()
    assert "expires_at" in latest and "console (key:" in latest
    b.check()
    assert site.store.memories.get(memory.id).expires_at is None
    assert site.store.memories.history(memory.id)[-1].new_value == {"expires_at": None}


def test_search_in_each_mode_shows_why_hits_rank(signed_in: Any, site: Site) -> None:
    b = signed_in["reader"]
    b.goto("/p/default/search")
    for mode in ("hybrid", "vector", "text"):
        b.page.fill("#q", "rounding per line")
        b.page.check(f"input[name=mode][value={mode}]")
        if mode == "vector":
            b.page.fill("#threshold", "0")
        b.page.click("#search-form button[type=submit]")
        b.page.wait_for_selector(f"#results h2:has-text('mode {mode}')")
        hits = b.page.locator("#hits tbody tr")
        assert hits.count() >= 1, mode
        first = hits.first.inner_text()
        assert mode in first  # the retrieval method
        if mode == "hybrid":
            assert "vector leg" in first and "text leg" in first
        assert f"mode={mode}" in b.page.url  # the search is in the address, to share
        b.check()


def test_a_new_event_appears_in_the_live_tail_without_reloading(signed_in: Any, site: Site) -> None:
    b = signed_in["reader"]
    b.goto("/p/default/events")
    b.page.wait_for_selector("#tail[data-live=true]")
    b.page.evaluate("window.__same_page = true")
    last = site.store.events.last_sequence()

    def append() -> None:
        time.sleep(0.3)
        site.store.events.append("deploy.finished", {"build": 812})

    writer = threading.Thread(target=append)
    writer.start()
    b.page.wait_for_selector(f"#tail li[data-sequence='{last + 1}']")
    writer.join()
    newest = b.page.locator("#tail li").first.inner_text()
    assert "deploy.finished" in newest and "812" in newest
    assert b.page.evaluate("window.__same_page") is True  # no reload happened
    b.check()


def test_a_reader_sees_no_write_controls_and_a_forged_post_is_refused(
    signed_in: Any, site: Site
) -> None:
    memory_id = site.ids["memory"]
    before = site.store.memories.get(memory_id).content
    b = signed_in["reader"]
    for path in (
        f"/p/default/memories/{memory_id}",
        f"/p/default/conversations/{site.ids['conversation']}",
        f"/p/default/contexts/{site.ids['context']}",
        "/p/default/state",
        "/p/default/events",
        "/p/default/subscriptions",
    ):
        b.goto(path)
        forms = b.page.locator("main form[method=post]")
        assert forms.count() == 0, f"{path} shows a write control to a reader"
    assert b.page.locator("nav >> text=Databases").count() == 0
    assert b.page.locator("nav >> text=Keys").count() == 0

    csrf = b.page.get_attribute("body", "hx-headers") or ""
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', csrf)
    assert token is not None
    forged = b.page.request.post(
        site.console(f"/p/default/memories/{memory_id}/edit"),
        form={"csrf_token": token.group(1), "content": "forged"},
        headers={"Origin": site.url},
        max_redirects=0,
    )
    assert forged.status == 403, forged.text()
    assert "writer or admin" in forged.text()
    admin_page = b.page.request.get(site.console("/admin/databases"), max_redirects=0)
    assert admin_page.status == 403
    assert site.store.memories.get(memory_id).content == before


def test_a_dead_letter_is_retried_by_a_writer_and_not_offered_to_a_reader(
    signed_in: Any, site: Site
) -> None:
    store = site.store
    with webhook_receiver() as receiver:
        ping = store.events.append("hook.ping", {"n": 1})
        sub = store.subscriptions.create(
            agent_id="hooked",
            event_types=["hook.ping"],
            delivery="webhook",
            target=f"{receiver.url}/ok",
            secret="a-shared-secret-for-tests",
        )
        with store.db.connect(write=True) as connection:  # given up on, as the worker does
            connection.execute(
                insert(dead_letters_table).values(
                    id=new_id(),
                    subscription_id=sub.id,
                    event_id=ping.id,
                    sequence=ping.sequence,
                    attempts=8,
                    last_error="the receiver answered HTTP 503",
                    created_at=utcnow(),
                )
            )
        page = f"/p/default/subscriptions/{sub.id}"
        reader = signed_in["reader"]
        reader.goto(page)
        assert "HTTP 503" in reader.page.inner_text("#dead-letters")
        assert reader.page.locator("main form[method=post]").count() == 0
        token = re.search(
            r'"X-CSRF-Token": "([^"]+)"', reader.page.get_attribute("body", "hx-headers") or ""
        )
        assert token is not None
        forged = reader.page.request.post(
            site.console(f"{page}/dead-letters/retry"),
            form={"csrf_token": token.group(1)},
            headers={"Origin": site.url},
            max_redirects=0,
        )
        assert forged.status == 403, forged.text()
        assert receiver.deliveries == []

        b = signed_in["writer"]
        b.goto(page)
        b.accessible()
        b.page.click(f"#dead-letters button[aria-label='Retry event #{ping.sequence}']")
        b.page.wait_for_selector(".flash.ok")
        assert "Delivered 1" in b.page.inner_text(".flash.ok")
        assert "No dead letters" in b.page.inner_text("#dead-letters")
        b.check()
        assert receiver.accepted(str(sub.id)) == [ping.sequence]
    assert store.subscriptions.dead_letters(sub.id).items == []
    store.subscriptions.delete(sub.id)


def test_a_request_without_the_csrf_token_is_refused(signed_in: Any, site: Site) -> None:
    memory_id = site.ids["memory"]
    before = site.store.memories.get(memory_id).content
    b = signed_in["admin"]
    b.goto(f"/p/default/memories/{memory_id}")
    edit = site.console(f"/p/default/memories/{memory_id}/edit")
    missing = b.page.request.post(edit, form={"content": "no token"}, max_redirects=0)
    assert missing.status == 403
    assert "security token" in missing.text()
    wrong = b.page.request.post(
        edit, form={"csrf_token": "guessed", "content": "wrong token"}, max_redirects=0
    )
    assert wrong.status == 403
    signed_out = b.page.request.post(
        site.console("/logout"), form={"content": "x"}, max_redirects=0
    )
    assert signed_out.status == 403  # not even sign-out without the token
    assert site.store.memories.get(memory_id).content == before


def test_state_is_edited_with_compare_and_set(signed_in: Any, site: Site) -> None:
    b = signed_in["writer"]
    b.goto("/p/default/state?namespace=agents%2Fplanner")
    row = b.page.locator("table.rows tbody tr", has_text="plan")
    row.locator("summary").click()
    site.store.state.put("plan", {"step": 2}, namespace="agents/planner")  # meanwhile
    row.locator("textarea").fill('{"step": 99}')
    row.locator("button", has_text="Save if still v1").click()
    b.page.wait_for_selector(".flash.error")
    assert "version 2" in b.page.inner_text(".flash.error")
    assert site.store.state.get("plan", namespace="agents/planner").value == {"step": 2}
    row = b.page.locator("table.rows tbody tr", has_text="plan")
    row.locator("summary").click()
    row.locator("textarea").fill('{"step": 3}')
    row.locator("button", has_text="Save if still v2").click()
    b.page.wait_for_selector(".flash.ok")
    assert site.store.state.get("plan", namespace="agents/planner").value == {"step": 3}
    b.check()


def test_a_key_is_shown_once_and_revoked_from_the_console(signed_in: Any, site: Site) -> None:
    b = signed_in["admin"]
    b.goto("/admin/keys")
    b.page.fill("#k-name", "console made")
    b.page.select_option("#k-role", "reader")
    b.page.click("#create-key button[type=submit]")
    key = b.page.inner_text("#new-key").strip()
    assert key.startswith(KEY_PREFIX)
    b.check(allowed=key)
    b.goto("/admin/keys")
    assert key not in b.page.content()
    row = b.page.locator("table.rows tbody tr", has_text="console made")
    b.page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button", has_text="Revoke").click()
    b.page.wait_for_selector(".flash.ok")
    assert site.store.keys.authenticate(key) is None
    b.check()


def test_every_control_of_a_page_is_reachable_by_keyboard(browser: Any, site: Site) -> None:
    with Browsing(browser, site) as b:
        b.goto("/login")
        b.page.keyboard.press("Tab")  # the key field has focus already; Tab moves on
        b.page.focus("#api_key")
        b.page.keyboard.type(site.keys["reader"])
        b.page.keyboard.press("Enter")
        b.page.wait_for_url(f"{site.url}/console/")
        b.page.keyboard.press("Tab")
        assert b.page.evaluate("document.activeElement.textContent") == "Skip to content"
        b.page.keyboard.press("Enter")
        assert b.page.evaluate("location.hash") == "#main"


def test_an_event_appended_from_the_form_reaches_the_tail(signed_in: Any, site: Site) -> None:
    b = signed_in["writer"]
    b.goto("/p/default/events")
    b.page.wait_for_selector("#tail[data-live=true]")
    b.page.click("text=Append an event")
    b.page.fill("#event_type", "note.added")
    b.page.fill("#event-data", '{"from": "the console form"}')
    b.page.click("#append-event button[type=submit]")
    b.page.wait_for_selector("#append-result .flash.ok")  # htmx: the page stays
    sequence = site.store.events.last_sequence()
    b.page.wait_for_selector(f"#tail li[data-sequence='{sequence}']")
    assert "the console form" in b.page.locator("#tail li").first.inner_text()
    b.check()


def test_conversations_are_filtered_by_metadata(signed_in: Any, site: Site) -> None:
    b = signed_in["reader"]
    b.goto("/p/default/conversations")
    b.page.fill("#f-meta", '{"topic": "billing"}')
    b.page.click("form[role=search] button[type=submit]")
    b.page.wait_for_url(re.compile(r".*metadata=.*"))
    assert "Billing drift" in b.page.inner_text("table.rows")
    b.page.fill("#f-meta", '{"topic": "weather"}')
    b.page.click("form[role=search] button[type=submit]")
    b.page.wait_for_selector("text=No conversations match.")
    b.check()


def test_reembedding_is_followed_to_its_end(signed_in: Any, site: Site) -> None:
    """Last in the module: the store's active model changes."""
    b = signed_in["admin"]
    b.goto("/admin/embeddings")
    b.page.fill("#model", "hash:32")
    b.page.click("#start-reembed button[type=submit]")
    b.page.wait_for_url(re.compile(r".*/admin/jobs/[0-9a-f-]{36}$"))
    b.page.wait_for_selector("#job-status:has-text('completed')", timeout=60_000)
    assert "hash:32" in b.page.inner_text("#job")
    assert b.page.inner_text("#job-percent") == "100.0%"
    b.check()
    b.goto("/admin/embeddings")
    assert "hash:32" in b.page.inner_text("table.rows")
