"""Console sessions and their guards, without a browser: cookies, expiry, revocation,
CSRF, redirects and headers, on every backend."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.server.app import create_app
from ctxbase.server.console.sessions import SESSION_COOKIE
from tests.conftest import open_store
from tests.console.conftest import CONSOLE_BACKENDS, database


@pytest.fixture(scope="module", params=CONSOLE_BACKENDS)
def keyed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ctxbase.Store, dict[str, str]]]:
    """A store of each backend (one per module), served with keys required."""
    with ExitStack() as stack:
        url = database(request, tmp_path_factory, stack, request.param)
        store = stack.enter_context(open_store(url, auth="required", embed_worker_interval=0))
        keys = {role: store.keys.create(role=role).key for role in ("admin", "writer", "reader")}
        yield store, keys


def _client(store: ctxbase.Store, *, https: bool = False) -> TestClient:
    base = "https://testserver" if https else "http://testserver"
    return TestClient(create_app(store=store), base_url=base, follow_redirects=False)


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page[:500]
    return found.group(1)


def sign_in(client: TestClient, key: str) -> httpx.Response:
    token = _token(client.get("/console/login").text)
    return client.post("/console/login", data={"csrf_token": token, "api_key": key})


def _page_token(client: TestClient) -> str:
    return re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/console/").text).group(1)  # type: ignore[union-attr]


def test_sign_in_sets_a_strict_cookie_and_keeps_no_key_in_it(keyed: Any) -> None:
    store, keys = keyed
    with _client(store) as client:
        answer = sign_in(client, keys["reader"])
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if SESSION_COOKIE in c)
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
        assert "Path=/console" in cookie and "Secure" not in cookie  # plain HTTP here
        assert keys["reader"] not in cookie
        assert client.get("/console/").status_code == 200


def test_over_tls_the_cookie_is_secure(keyed: Any) -> None:
    store, keys = keyed
    with _client(store, https=True) as client:
        answer = sign_in(client, keys["reader"])
        cookie = next(c for c in answer.headers.get_list("set-cookie") if SESSION_COOKIE in c)
        assert "Secure" in cookie


def test_a_bad_key_is_refused_and_not_echoed(keyed: Any) -> None:
    store, _keys = keyed
    with _client(store) as client:
        answer = sign_in(client, "cbk_not_a_key_at_all_0123456789")
        assert answer.status_code == 401
        assert "cbk_not_a_key_at_all" not in answer.text
        assert f"{SESSION_COOKIE}=" not in answer.headers.get("set-cookie", "")


def test_the_sign_in_form_needs_its_own_token(keyed: Any) -> None:
    store, keys = keyed
    with _client(store) as client:
        client.get("/console/login")
        answer = client.post("/console/login", data={"api_key": keys["admin"]})
        assert answer.status_code == 403
        assert client.get("/console/").status_code == 303  # still signed out


def test_a_revoked_key_ends_its_session_at_once(keyed: Any) -> None:
    store, _keys = keyed
    doomed = store.keys.create(role="writer", name="doomed")
    with _client(store) as client:
        sign_in(client, doomed.key)
        assert client.get("/console/").status_code == 200
        store.keys.revoke(doomed.key_id)
        answer = client.get("/console/p/default/memories")
        assert answer.status_code == 303
        assert "ended=key" in answer.headers["location"]
        assert "no longer works" in client.get(answer.headers["location"]).text


def test_a_session_expires(keyed: Any) -> None:
    store, keys = keyed
    app = create_app(store=store)
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, keys["reader"])
        console = next(
            route.app for route in app.routes if getattr(route, "path", "") == "/console"
        )
        for session in console.state.sessions._sessions.values():
            assert session.expires_at < time.time() + 8 * 3600 + 5  # the default lifetime
            session.expires_at = time.time() - 1
        answer = client.get("/console/")
        assert answer.status_code == 303 and "ended=expired" in answer.headers["location"]


def test_sign_out_needs_the_token_and_ends_the_session(keyed: Any) -> None:
    store, keys = keyed
    with _client(store) as client:
        sign_in(client, keys["reader"])
        token = _page_token(client)
        assert client.post("/console/logout").status_code == 403
        answer = client.post("/console/logout", data={"csrf_token": token})
        assert answer.status_code == 303 and "ended=signout" in answer.headers["location"]
        assert client.get("/console/").status_code == 303


def test_unsafe_requests_need_the_token_and_this_site(keyed: Any) -> None:
    store, keys = keyed
    memory = store.memories.add("The user likes tea")
    edit = f"/console/p/default/memories/{memory.id}/edit"
    with _client(store) as client:
        sign_in(client, keys["admin"])
        token = _page_token(client)
        assert client.post(edit, data={"content": "x"}).status_code == 403
        cross = client.post(
            edit,
            data={"csrf_token": token, "content": "x"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        fetched = client.post(
            edit,
            data={"csrf_token": token, "content": "x"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert fetched.status_code == 403
        by_header = client.post(
            edit, data={"content": "Tea, green"}, headers={"X-CSRF-Token": token}
        )
        assert by_header.status_code == 303
    assert store.memories.get(memory.id).content == "Tea, green"


def test_a_readers_forged_write_is_refused_by_the_api(keyed: Any) -> None:
    store, keys = keyed
    memory = store.memories.add("The user likes tea")
    key_count = len(store.keys.list().items)
    with _client(store) as client:
        sign_in(client, keys["reader"])
        token = _page_token(client)
        for path, data in (
            (f"/console/p/default/memories/{memory.id}/edit", {"content": "forged"}),
            (f"/console/p/default/memories/{memory.id}/delete", {}),
            ("/console/p/default/state/put", {"key": "k", "value": "1"}),
            ("/console/p/default/events/append", {"event_type": "x"}),
            ("/console/admin/keys", {"role": "admin"}),
            ("/console/admin/databases", {"name": "x", "kind": "sqlite", "sqlite_path": "x"}),
        ):
            answer = client.post(path, data={"csrf_token": token, **data})
            assert answer.status_code == 403, (path, answer.status_code)
    assert store.memories.get(memory.id).content == "The user likes tea"
    assert len(store.keys.list().items) == key_count


def test_after_sign_in_only_console_paths_are_followed(keyed: Any) -> None:
    store, keys = keyed
    with _client(store) as client:
        for wanted, expected in (
            ("/console/p/default/memories", "/console/p/default/memories"),
            ("https://evil.example/", "/console/"),
            ("//evil.example/console/", "/console/"),
            ("/elsewhere", "/console/"),
            ("/console\\@evil", "/console/"),
        ):
            token = _token(client.get("/console/login").text)
            answer = client.post(
                "/console/login",
                data={"csrf_token": token, "api_key": keys["reader"], "next": wanted},
            )
            assert answer.headers["location"] == expected, wanted
            client.cookies.clear()


def test_pages_carry_a_strict_policy_and_are_not_cached(keyed: Any) -> None:
    store, keys = keyed
    with _client(store) as client:
        sign_in(client, keys["reader"])
        page = client.get("/console/p/default/memories")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "'unsafe-inline'" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
        asset = client.get("/console/static/htmx.min.js")
        assert asset.status_code == 200 and "no-store" not in asset.headers.get("cache-control", "")
        assert client.get("/", follow_redirects=False).headers["location"] == "/console/"


def test_without_keys_the_console_acts_as_the_development_admin(tmp_path: Any) -> None:
    with open_store(f"sqlite:///{tmp_path / 'open.db'}") as store, _client(store) as client:
        form = client.get("/console/login").text
        assert "runs without keys" in form and 'name="api_key"' not in form
        answer = client.post("/console/login", data={"csrf_token": _token(form)})
        assert answer.status_code == 303
        assert "Databases" in client.get("/console/").text


def test_unknown_pages_and_records_answer_404_pages(keyed: Any) -> None:
    store, keys = keyed
    with _client(store) as client:
        sign_in(client, keys["reader"])
        assert client.get("/console/nowhere").status_code == 404
        assert client.get("/console/p/default/memories/not-an-id").status_code == 404
        missing = client.get("/console/p/no-such-project/memories")
        assert missing.status_code == 404 and "No project" in missing.text


def test_a_key_limited_to_projects_sees_only_those(keyed: Any) -> None:
    store, _keys = keyed
    if "alpha" not in {p.slug for p in store.projects.list().items}:
        store.projects.create("alpha")
    limited = store.keys.create(role="writer", projects=["alpha"], name="alpha only")
    with _client(store) as client:
        sign_in(client, limited.key)
        dashboard = client.get("/console/")
        assert dashboard.status_code == 200
        assert 'value="alpha"' in dashboard.text and 'value="default"' not in dashboard.text
        assert client.get("/console/p/alpha/memories").status_code == 200
        assert client.get("/console/p/default/memories").status_code == 404
        assert client.get("/console/admin/databases").status_code == 403


def test_a_key_limited_to_scopes_sees_only_their_controls(keyed: Any) -> None:
    store, _keys = keyed
    memory = store.memories.add("The user likes tea")
    scoped = store.keys.create(role="writer", scopes=["memories:*"], name="memories only")
    with _client(store) as client:
        sign_in(client, scoped.key)
        page = client.get(f"/console/p/default/memories/{memory.id}")
        assert page.status_code == 200
        assert 'id="edit-memory"' in page.text  # memories:write held
        assert "/p/default/conversations" not in page.text  # no conversations:read
        assert client.get("/console/p/default/conversations").status_code == 403
        dashboard = client.get("/console/")
        assert dashboard.status_code == 200
        assert 'data-label="Conversations">—<' in dashboard.text  # not even how many
        assert 'data-label="Memories">—<' not in dashboard.text
        token = _page_token(client)
        refused = client.post(
            "/console/p/default/events/append", data={"csrf_token": token, "event_type": "x"}
        )
        assert refused.status_code == 403
