"""``ctxbase mcp`` over stdio, started as MCP clients start it: the SDK's client runs the
cycle in a subprocess on SQLite and PostgreSQL, and a configured key limits what it may do."""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import pytest
from mcp import Client

import ctxbase
from ctxbase.integrations.mcp import TOOLS
from tests.conftest import open_store
from tests.integrations.mcp_client import SRC, cycle, error_of, stdio_parameters


@pytest.mark.parametrize("persistent_database_url", ["sqlite-file", "postgres"], indirect=True)
def test_the_cycle_runs_over_stdio(persistent_database_url: str) -> None:
    async def run() -> None:
        async with Client(stdio_parameters(persistent_database_url)) as client:
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == {tool.name for tool in TOOLS}
            await cycle(client)
            kept = await client.call_tool("remember", {"content": "kept for later"})
            assert not kept.is_error

    anyio.run(run)
    with open_store(persistent_database_url) as store:
        assert [m.content for m in store.memories.list().items] == ["kept for later"]


@pytest.mark.parametrize("persistent_database_url", ["sqlite-file"], indirect=True)
def test_stdio_acts_as_the_configured_key(persistent_database_url: str) -> None:
    with open_store(persistent_database_url) as store:
        store.projects.create("alpha")
        store.memories.add("a default-project memory")
        reader = store.keys.create(role="reader", name="reader").key
        alpha = store.keys.create(role="writer", name="alpha", projects=["alpha"]).key

    async def run() -> None:
        as_reader = stdio_parameters(persistent_database_url, mcp_api_key=reader)
        async with Client(as_reader) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert listed == {tool.name for tool in TOOLS if tool.read_only}
            refused = await client.call_tool("remember", {"content": "no"})
            assert error_of(refused)["code"] == "permission_denied"
            stats = await client.call_tool("stats", {})
            assert stats.structured_content["memories"] == 1
        as_alpha = stdio_parameters(persistent_database_url, mcp_api_key=alpha)
        async with Client(as_alpha) as client:
            written = await client.call_tool("remember", {"content": "in alpha"})
            assert not written.is_error, written
            stats = await client.call_tool("stats", {})
            assert stats.structured_content["project"] == "alpha"

    anyio.run(run)
    with open_store(persistent_database_url) as store:
        assert [m.content for m in store.memories.list(project="alpha").items] == ["in alpha"]
        assert len(store.memories.list().items) == 1


def _mcp_command(
    database_url: str, *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **stdio_parameters(database_url, **settings).env,  # type: ignore[dict-item]
    }
    return subprocess.run(
        [sys.executable, "-m", "ctxbase", "mcp", *args],
        env={**env, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("persistent_database_url", ["sqlite-file"], indirect=True)
def test_list_tools_shows_the_project_and_what_the_key_may_call(
    persistent_database_url: str,
) -> None:
    with open_store(persistent_database_url) as store:
        store.projects.create("alpha")
        reader = store.keys.create(role="reader", name="r", projects=["alpha"]).key
    done = _mcp_command(persistent_database_url, "--list-tools", mcp_api_key=reader)
    assert done.returncode == 0, done.stderr
    assert "project alpha" in done.stdout and "recall" in done.stdout
    assert "remember" not in done.stdout
    everything = _mcp_command(persistent_database_url, "--list-tools")
    assert "the local library" in everything.stdout and "remember:" in everything.stdout


@pytest.mark.parametrize("persistent_database_url", ["sqlite-file"], indirect=True)
def test_a_bad_key_or_project_stops_the_server_with_a_message(
    persistent_database_url: str,
) -> None:
    ctxbase.open(persistent_database_url, embedder="hash:64").close()
    bad_key = _mcp_command(persistent_database_url, mcp_api_key="ctxb_not_a_key")
    assert bad_key.returncode == 1
    assert "MCP API key is not valid" in bad_key.stderr
    no_project = _mcp_command(persistent_database_url, "--project", "nowhere")
    assert no_project.returncode == 1
    assert "No project 'nowhere'" in no_project.stderr
