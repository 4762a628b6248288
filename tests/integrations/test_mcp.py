"""The MCP server: tools derived from the declarations, the full cycle through the SDK's
client over streamable HTTP on SQLite and PostgreSQL, and keys limited by role and
project through MCP as through REST."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

import ctxbase
from ctxbase.api import OPERATIONS
from ctxbase.integrations.mcp import TOOLS, Caller, build_server
from ctxbase.server import create_app
from ctxbase.store.base import Scope
from tests.integrations.mcp_client import cycle, error_of, http_client
from tests.live import live_server

SERVED = ["sqlite-file", "postgres"]
READ_ONLY = {tool.name for tool in TOOLS if tool.read_only}


# --- the tools, from the declarations --------------------------------------------------


def test_every_tool_is_made_from_a_declared_operation() -> None:
    names = [tool.name for tool in TOOLS]
    assert len(names) == len(set(names))
    assert {"recall", "remember", "update_memory", "forget", "memory_history"} <= set(names)
    assert {"append_messages", "get_messages", "get_state", "set_state", "stats"} <= set(names)
    assert {"put_context", "get_context", "append_event", "read_events"} <= set(names)
    for tool in TOOLS:
        op = OPERATIONS[tool.operation]
        described = tool.describe({})
        assert described.description.startswith(op.summary)
        assert tool.read_only == (op.rule == "read"), tool.name
        assert described.annotations.read_only_hint is tool.read_only
        if not tool.read_only:
            assert described.annotations.destructive_hint is tool.destructive
        schema = described.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert "project" not in schema.get("properties", {})  # never a model's choice
        assert "actor" not in schema.get("properties", {})
        assert described.output_schema is not None and described.output_schema["type"] == "object"
        body = op.body.model_fields if op.body is not None else {}
        for name in body:  # the body's fields, with their limits
            assert name in schema["properties"], (tool.name, name)


def test_the_parameters_keep_the_declared_limits_and_descriptions() -> None:
    recall = next(tool for tool in TOOLS if tool.name == "recall").describe({}).input_schema
    assert recall["properties"]["max_tokens"]["maximum"] == 1_000_000
    assert recall["required"] == ["query"]
    remember = next(tool for tool in TOOLS if tool.name == "remember").describe({})
    assert remember.input_schema["properties"]["importance"]["maximum"] == 1
    update = next(tool for tool in TOOLS if tool.name == "update_memory").describe({})
    assert "expected_version" in update.input_schema["properties"]
    assert update.annotations.destructive_hint is True


def test_update_memory_clears_an_expiry(store: ctxbase.Store) -> None:
    memory = store.memories.add("a passing thought", ttl_seconds=3600)
    update = next(tool for tool in TOOLS if tool.name == "update_memory")
    clear = update.input_model.model_validate({"memory_id": str(memory.id), "clear_expiry": True})
    caller = Caller.of(store, None, "default")
    done = update.call(caller, clear.model_dump(exclude_unset=True))
    assert done["expires_at"] is None and done["version"] == 2
    assert store.memories.history(memory.id)[-1].new_value == {"expires_at": None}
    both = {"memory_id": str(memory.id), "clear_expiry": True, "expires_at": "2999-01-01T00:00Z"}
    with pytest.raises(ctxbase.InvalidInputError, match="clear_expiry"):
        update.call(caller, update.input_model.model_validate(both).model_dump(exclude_unset=True))


def test_operators_append_their_own_text_to_descriptions() -> None:
    notes = {"*": "Project: billing.", "recall": "Call it before every answer."}
    recall = next(tool for tool in TOOLS if tool.name == "recall").describe(notes)
    assert recall.description.endswith("Project: billing. Call it before every answer.")
    stats = next(tool for tool in TOOLS if tool.name == "stats").describe(notes)
    assert stats.description.endswith("Project: billing.")


def test_the_cycle_runs_in_process_with_the_library_view(store: ctxbase.Store) -> None:
    server = build_server(lambda ctx: Caller.of(store, None, "default"))

    unit = store.contexts.add("docs/a b.md", "a unit with a path for a name")

    async def run() -> None:
        async with Client(server) as client:
            tools = await client.list_tools()
            assert {tool.name for tool in tools.tools} == {tool.name for tool in TOOLS}
            await cycle(client)
            templates = await client.list_resource_templates()
            assert {t.uri_template for t in templates.resource_templates} == {
                "ctxbase://conversations/{conversation_id}",
                "ctxbase://memories/{memory_id}",
                "ctxbase://contexts/{context_id}",
                "ctxbase://contexts/by-name/{name}",
            }
            listed = await client.list_resources()
            assert [r.uri for r in listed.resources] == [f"ctxbase://contexts/{unit.id}"]
            by_name = await client.read_resource("ctxbase://contexts/by-name/docs/a b.md")
            assert f'"id":"{unit.id}"' in by_name.contents[0].text
            for uri in ("ctxbase://contexts/by-name/none", "ctxbase://nothing/1", "http://x"):
                with pytest.raises(MCPError):
                    await client.read_resource(uri)
            with pytest.raises(MCPError, match="Unknown tool"):
                await client.call_tool("no_such_tool", {})

    anyio.run(run)
    assert store.memories.list().items == []


# --- over HTTP, with keys ----------------------------------------------------------------


@pytest.fixture
def served(store: ctxbase.Store) -> Iterator[dict[str, Any]]:
    """A live server over ``store`` with authentication on, its projects and keys."""
    for slug in ("alpha", "beta"):
        store.projects.create(slug)
    keys = {
        "admin": store.keys.create(role="admin", name="admin").key,
        "reader": store.keys.create(role="reader", name="reader").key,
        "alpha": store.keys.create(role="writer", name="alpha", projects=["alpha"]).key,
        "both": store.keys.create(role="writer", name="both", projects=["alpha", "beta"]).key,
    }
    settings = store.settings.model_copy(update={"auth": "required"})
    with live_server(create_app(store=store, settings=settings)) as url:
        yield {"url": url, "keys": keys, "store": store}


@pytest.mark.parametrize("backend", SERVED, indirect=True)
@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_the_cycle_runs_over_streamable_http(served: dict[str, Any], mode: str) -> None:
    async def run() -> None:
        async with http_client(served["url"], served["keys"]["admin"], mode=mode) as client:
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == {tool.name for tool in TOOLS}
            await cycle(client)
            chat = await client.call_tool("start_conversation", {"title": "coffee"})
            chat_id = chat.structured_content["id"]
            appended = await client.call_tool(
                "append_messages",
                {"conversation_id": chat_id, "messages": [{"role": "user", "content": "hi"}]},
            )
            assert appended.structured_content["items"][0]["position"] == 1
            resources = await client.list_resources()
            assert f"ctxbase://conversations/{chat_id}" in {r.uri for r in resources.resources}
            read = await client.read_resource(f"ctxbase://conversations/{chat_id}")
            assert '"content":"hi"' in read.contents[0].text

    anyio.run(run)


@pytest.mark.parametrize("backend", SERVED, indirect=True)
def test_state_context_and_events_tools_over_http(served: dict[str, Any]) -> None:
    async def run() -> None:
        async with http_client(served["url"], served["keys"]["admin"]) as client:
            put = await client.call_tool(
                "set_state", {"namespace": "plan", "key": "step", "value": 1, "expected_version": 0}
            )
            assert put.structured_content["version"] == 1
            stale = await client.call_tool(
                "set_state", {"namespace": "plan", "key": "step", "value": 2, "expected_version": 0}
            )
            assert error_of(stale)["code"] == "version_conflict"
            got = await client.call_tool("get_state", {"namespace": "plan", "key": "step"})
            assert got.structured_content["value"] == 1
            unit = await client.call_tool("put_context", {"name": "a.py", "content": "v1"})
            await client.call_tool("put_context", {"name": "a.py", "content": "v2"})
            latest = await client.call_tool("get_context", {"name": "a.py"})
            first = await client.call_tool("get_context", {"name": "a.py", "version": 1})
            assert latest.structured_content["version"] == 2
            assert first.structured_content["id"] == unit.structured_content["id"]
            event = await client.call_tool("append_event", {"event_type": "t", "data": {"n": 1}})
            assert event.structured_content["sequence"] == 1
            events = await client.call_tool("read_events", {})
            assert [e["sequence"] for e in events.structured_content["items"]] == [1]
            stats = await client.call_tool("stats", {})
            assert stats.structured_content["state_entries"] == 1
            assert stats.structured_content["context_units"] == 1

    anyio.run(run)


@pytest.mark.parametrize("backend", SERVED, indirect=True)
def test_a_read_only_key_cannot_write_through_mcp(served: dict[str, Any]) -> None:
    store: ctxbase.Store = served["store"]
    store.memories.add("The user drinks espresso")

    async def run() -> None:
        async with http_client(served["url"], served["keys"]["reader"]) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert listed == READ_ONLY
            refused = await client.call_tool("remember", {"content": "written by a reader"})
            assert error_of(refused)["code"] == "permission_denied"
            memory = store.memories.list().items[0]
            for name, arguments in (
                ("forget", {"memory_id": str(memory.id)}),
                ("update_memory", {"memory_id": str(memory.id), "content": "changed"}),
                ("set_state", {"key": "k", "value": 1}),
                ("append_event", {"event_type": "t"}),
            ):
                assert error_of(await client.call_tool(name, arguments))["code"] == (
                    "permission_denied"
                )
            recalled = await client.call_tool("recall", {"query": "espresso"})
            assert len(recalled.structured_content["items"]) == 1

    anyio.run(run)
    assert [m.content for m in store.memories.list().items] == ["The user drinks espresso"]
    assert store.stats().events == 0


@pytest.mark.parametrize("backend", SERVED, indirect=True)
def test_a_key_limited_to_a_project_cannot_reach_another(served: dict[str, Any]) -> None:
    store: ctxbase.Store = served["store"]
    secret = store.memories.add("beta's secret plan", project="beta")
    url, keys = served["url"], served["keys"]

    async def run() -> None:
        async with http_client(url, keys["alpha"]) as client:  # its only project
            written = await client.call_tool("remember", {"content": "alpha's note"})
            assert not written.is_error, written
            stats = await client.call_tool("stats", {})
            assert stats.structured_content["project"] == "alpha"
            argued = await client.call_tool("stats", {"project": "beta"})
            assert error_of(argued)["code"] == "invalid_input"  # not a parameter
            recalled = await client.call_tool("recall", {"query": "beta's secret plan"})
            found = [item["id"] for item in recalled.structured_content["items"]]
            assert found and str(secret.id) not in found
            assert "secret" not in recalled.structured_content["text"]
            for name in ("memory_history", "forget"):
                found = await client.call_tool(name, {"memory_id": str(secret.id)})
                assert error_of(found)["code"] == "not_found"
            with pytest.raises(Exception, match=r"No resource|No memory"):
                await client.read_resource(f"ctxbase://memories/{secret.id}")
        async with http_client(url, keys["both"], headers={"X-Ctxbase-Project": "beta"}) as client:
            stats = await client.call_tool("stats", {})
            assert stats.structured_content["project"] == "beta"

    anyio.run(run)
    assert [m.content for m in store.memories.list(project="alpha").items] == ["alpha's note"]
    assert [m.content for m in store.memories.list(project="beta").items] == ["beta's secret plan"]
    assert store.memories.list().items == []  # nothing landed in the default project


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_the_endpoint_refuses_missing_bad_and_out_of_project_keys(served: dict[str, Any]) -> None:
    url, keys = served["url"], served["keys"]
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=url, headers=accept) as http:
        missing = http.post("/mcp", json=ping)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthenticated"
        bad = http.post("/mcp", json=ping, headers={"X-API-Key": "ctxb_nope"})
        assert bad.status_code == 401
        elsewhere = http.post(
            "/mcp",
            json=ping,
            headers={"Authorization": f"Bearer {keys['alpha']}", "X-Ctxbase-Project": "beta"},
        )
        assert elsewhere.status_code == 404
        assert elsewhere.json()["error"]["code"] == "not_found"
        several = http.post("/mcp", json=ping, headers={"X-API-Key": keys["both"]})
        assert several.status_code == 404  # limited to alpha and beta, not `default`
        admin = {"X-API-Key": keys["admin"]}
        fine = http.post("/mcp", json=ping, headers=admin)
        assert fine.status_code == 200, fine.text
        for body in (b"{not json", b"[]", b'{"jsonrpc": "2.0", "id": 2, "method": "nope"}'):
            odd = http.post(
                "/mcp", content=body, headers={**admin, "Content-Type": "application/json"}
            )
            assert 200 <= odd.status_code < 500, (body, odd.status_code, odd.text)
        rebinding = http.post("/mcp", json=ping, headers={**admin, "Origin": "http://evil.example"})
        assert rebinding.status_code == 403  # a web page cannot reach a local server


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_writes_through_mcp_respect_the_tenants_quotas(store: ctxbase.Store) -> None:
    store.tenants.create("tiny", quotas={"items": 2})
    store.scoped(Scope(tenant="tiny", server_admin=False)).projects.create("one")
    key = store.keys.create(tenant="tiny", role="writer", projects=["one"]).key
    app = create_app(store=store, settings=store.settings.model_copy(update={"auth": "required"}))

    async def run() -> None:
        async with http_client(url, key) as client:
            for text in ("a", "b"):
                added = await client.call_tool("remember", {"content": text})
                assert not added.is_error, added
                app.state.usage.forget()
            over = await client.call_tool("remember", {"content": "c"})
            assert error_of(over)["code"] == "quota_exceeded"
            assert not (await client.call_tool("recall", {"query": "a"})).is_error

    with live_server(app) as url:
        anyio.run(run)
