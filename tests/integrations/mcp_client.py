"""Connecting the MCP SDK's own client to ctxbase, over HTTP or stdio, in tests."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import TEST_EMBEDDER

SRC = str(Path(__file__).resolve().parents[2] / "src")


@asynccontextmanager
async def http_client(
    base_url: str, key: str | None, *, headers: dict[str, str] | None = None, mode: str = "auto"
) -> AsyncIterator[Client]:
    """An MCP client of ``/mcp`` on a live server, sending ``key`` as a Bearer token."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    async with httpx2.AsyncClient(headers=sent, timeout=30) as http:
        transport = streamable_http_client(f"{base_url}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


def stdio_parameters(database_url: str, **settings: str) -> StdioServerParameters:
    """``ctxbase mcp`` as an MCP client starts it, on ``database_url``."""
    env = {
        "CTXBASE_DATABASE_URL": database_url,
        "CTXBASE_EMBEDDER": TEST_EMBEDDER,
        "CTXBASE_SECRET_KEY": os.environ["CTXBASE_SECRET_KEY"],
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **{f"CTXBASE_{name.upper()}": value for name, value in settings.items()},
    }
    return StdioServerParameters(command=sys.executable, args=["-m", "ctxbase", "mcp"], env=env)


def error_of(result: Any) -> dict[str, Any]:
    """The ctxbase error envelope of a tool result marked as an error."""
    assert result.is_error, result
    envelope: dict[str, Any] = json.loads(result.content[0].text)["error"]
    return envelope


async def cycle(client: Client) -> dict[str, Any]:
    """remember → recall → update → history → forget, checking each step."""
    remembered = await client.call_tool(
        "remember", {"content": "The user drinks espresso every morning", "importance": 0.9}
    )
    assert not remembered.is_error, remembered
    memory = remembered.structured_content
    assert memory["version"] == 1
    source = f"memory:{memory['id']}"

    asked = {"query": "espresso morning", "max_tokens": 200, "kinds": ["memory"]}
    recalled = await client.call_tool("recall", asked)
    assert not recalled.is_error, recalled
    assert source in recalled.content[0].text  # the prompt-ready text
    assert [item["source"] for item in recalled.structured_content["items"]] == [source]
    assert recalled.structured_content["tokens"] <= 200

    change = {"memory_id": memory["id"], "content": "The user drinks green tea now"}
    updated = await client.call_tool("update_memory", {**change, "expected_version": 1})
    assert not updated.is_error, updated
    assert updated.structured_content["content"] == "The user drinks green tea now"
    assert updated.structured_content["version"] == 2
    stale = await client.call_tool(
        "update_memory", {"memory_id": memory["id"], "importance": 0.1, "expected_version": 1}
    )
    assert error_of(stale)["code"] == "version_conflict"

    history = await client.call_tool("memory_history", {"memory_id": memory["id"]})
    assert not history.is_error, history
    changes = history.structured_content["items"]
    assert [change["action"] for change in changes] == ["add", "update"]
    assert changes[1]["new_value"]["content"] == "The user drinks green tea now"
    assert changes[1]["actor"].startswith("mcp")
    assert history.structured_content["version"] == 2

    forgotten = await client.call_tool("forget", {"memory_id": memory["id"]})
    assert forgotten.structured_content == {"forgotten": memory["id"]}
    again = await client.call_tool("recall", {"query": "green tea espresso", "kinds": ["memory"]})
    assert again.structured_content["items"] == []
    gone = await client.call_tool("memory_history", {"memory_id": memory["id"]})
    assert error_of(gone)["code"] == "not_found"
    return memory
