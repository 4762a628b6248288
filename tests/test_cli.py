"""The ``ctxbase`` command line, in process and as a real server process."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ctxbase.cli import app
from ctxbase.db import migrate
from tests.conftest import open_store

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def cli_url(persistent_database_url: str) -> str:
    return persistent_database_url


def _empty_database(url: str) -> str:
    """``url``, with an empty SQLite file made at its path (reading never creates one)."""
    if url.startswith("sqlite:///"):
        sqlite3.connect(url.removeprefix("sqlite:///")).close()
    return url


def test_db_commands(cli_url: str) -> None:
    head = migrate.head_revision()
    code, output = run("-d", _empty_database(cli_url), "db", "current")
    assert (code, "empty" in output) == (0, True)
    code, output = run("-d", cli_url, "db", "upgrade")
    assert code == 0 and f"→ {head}" in output
    code, output = run("-d", cli_url, "db", "current")
    assert code == 0 and f"{head} (up to date)" in output
    code, output = run("-d", cli_url, "db", "downgrade", "base")
    assert code == 0 and "→ empty" in output
    code, output = run("-d", cli_url, "db", "upgrade")
    assert code == 0
    code, output = run("-d", cli_url, "db", "reset", "--yes")
    assert code == 0 and f"reset to {head}" in output
    code, output = run("-d", cli_url, "db", "history")
    assert code == 0 and head in output


def test_reset_asks_first(cli_url: str) -> None:
    run("-d", cli_url, "db", "upgrade")
    result = runner.invoke(app, ["-d", cli_url, "db", "reset"], input="n\n")
    assert result.exit_code != 0
    assert "Aborted" in result.output


def test_doctor(cli_url: str) -> None:
    run("-d", cli_url, "db", "upgrade")
    code, output = run("-d", cli_url, "doctor")
    assert code == 0
    assert re.search(r"status\s+ok", output)
    assert re.search(r"pending migrations\s+none", output)
    code, output = run("-d", cli_url, "doctor", "--json")
    assert code == 0 and '"status": "ok"' in output


def test_doctor_strict_fails_on_pending_migrations(cli_url: str) -> None:
    assert run("-d", _empty_database(cli_url), "doctor")[0] == 0  # degraded: exit 0 …
    code, output = run("-d", cli_url, "doctor", "--strict")
    assert code == 1 and "ctxbase db upgrade" in output  # … unless strict


def test_prune(cli_url: str) -> None:
    import datetime as dt

    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    with open_store(cli_url) as store:
        store.memories.add("stale", expires_at=past)
        kept = store.memories.add("fresh")
        store.state.put("lease", 1, ttl_seconds=1)
    import time

    time.sleep(1.1)
    code, output = run("-d", cli_url, "prune")
    assert code == 0 and "Deleted 1 expired memories and 1 expired state entries" in output
    with open_store(cli_url) as store:
        assert [m.id for m in store.memories.list().items] == [kept.id]


def test_errors_are_a_message_and_exit_1_never_a_traceback() -> None:
    for args in (
        ["-d", "mysql://u:pw@h/db", "db", "current"],
        ["-d", "postgresql://u:topsecret@127.0.0.1:1/db", "db", "upgrade"],
        ["-d", "postgresql://u:topsecret@127.0.0.1:1/db", "doctor"],
    ):
        process = subprocess.run(
            [sys.executable, "-m", "ctxbase", *args], capture_output=True, text=True, timeout=60
        )
        assert process.returncode == 1, args
        assert "Traceback" not in process.stderr + process.stdout
        assert "topsecret" not in process.stderr + process.stdout
        assert "Error" in process.stderr or "error" in process.stdout


def _ctxbase(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctxbase", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def test_reading_commands_never_create_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "agents.db"
    for args in (["doctor"], ["db", "current"], ["keys", "list"], ["databases", "list"], ["stats"]):
        process = _ctxbase("-d", f"sqlite:///{missing}", *args)
        assert process.returncode == 1, args
        assert "does not exist" in process.stderr and "Traceback" not in process.stderr
    assert not missing.parent.exists()


def test_a_port_out_of_range_is_a_usage_error() -> None:
    process = _ctxbase("serve", "--port", "99999")
    assert process.returncode == 2
    assert "--port" in process.stderr and "Traceback" not in process.stderr


def test_an_empty_password_on_stdin_registers_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'home.db'}"
    args = ["databases", "add", "prod", "--kind", "postgresql", "--database", "app"]
    process = _ctxbase("-d", url, *args, "--password-stdin", stdin="\n")
    assert process.returncode == 1 and "no password" in process.stderr
    with open_store(url) as store:
        assert store.databases.list() == []


_WITH_AN_EXIT_HANDLER = """
import atexit, sys, threading
from ctxbase.cli import main
atexit.register(lambda: print("exit handler ran", flush=True))
if sys.argv[1] == "thread":  # a thread still running at the end is waited for
    threading.Thread(target=lambda: (__import__("time").sleep(0.3), print("thread done"))).start()
sys.argv = ["ctxbase", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("thread", ["thread", "alone"])
def test_the_process_ends_with_its_exit_handlers_and_status(thread: str) -> None:
    """The command line skips the interpreter's teardown, not what ends a process."""
    for args, status, shown in (
        (["version"], 0, '"schema"'),
        (["db", "current", "--no-such-option"], 2, "No such option"),
    ):
        process = subprocess.run(
            [sys.executable, "-c", _WITH_AN_EXIT_HANDLER, thread, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert process.returncode == status, process.stderr
        assert process.stdout.rstrip().endswith("exit handler ran"), process.stdout
        assert ("thread done" in process.stdout) == (thread == "thread")
        assert shown in process.stdout + process.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_a_real_server(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "CTXBASE_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "ctxbase", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = _wait_for_health(f"http://127.0.0.1:{port}/api/v1/health")
        assert body["status"] == "ok"
        assert body["database"]["schema_revision"] == migrate.head_revision()
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert (tmp_path / "served.db").exists()


def _wait_for_health(url: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url, timeout=5).json()
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_every_command_is_documented() -> None:
    docs = (ROOT / "docs" / "cli.md").read_text()
    for name in _command_paths():
        assert f"ctxbase {name}" in docs, f"`ctxbase {name}` is missing from docs/cli.md"


def _command_paths() -> list[str]:
    import typer.main

    root = typer.main.get_command(app)
    paths = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            paths += [f"{name} {sub}" for sub in subcommands]
        else:
            paths.append(name)
    return paths


def test_embed_and_reembed(cli_url: str) -> None:
    from ctxbase.embeddings import EmbeddingError
    from ctxbase.store.embedding import Embeddings

    with open_store(cli_url) as store:
        healthy = store.embeddings

        class Down:
            name, dimensions = "hash:64", 64

            def embed(self, texts: list[str]) -> None:
                raise EmbeddingError("down")

        store.embeddings = Embeddings(store, Down())  # type: ignore[arg-type]
        store.memories.add("waiting for a vector")
        store.embeddings = healthy
        assert store.embeddings.pending()["memory"] == 1
    code, output = run("-d", cli_url, "embed")
    assert code == 0 and "Embedded 1 item(s) with hash:64" in output
    code, output = run("-d", cli_url, "reembed", "--model", "hash:16", "--drop-old")
    assert code == 0 and "hash:64 → hash:16" in output
    with open_store(cli_url) as store:
        assert store.embeddings.active_model() == "hash:16"
        assert store.search("vector", mode="vector", threshold=-1).hits
    code, output = run("-d", cli_url, "reembed", "--model", "magic:1")
    assert code == 1


def test_the_command_line_starts_without_the_store() -> None:
    # Commands that do not use the store (migrate, export, db ...) do not pay for loading it.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, ctxbase.cli; heavy = ('ctxbase.store', 'ctxbase.client');"
            " print(sorted(m for m in sys.modules if m.startswith(heavy)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_a_key_limited_to_scopes(cli_url: str) -> None:
    code, output = run("keys", "create", "-d", cli_url, "--scopes", "memories:read, events:*")
    assert code == 0, output
    with open_store(cli_url) as store:
        (key,) = store.keys.list().items
        assert sorted(key.scopes or []) == ["events:*", "memories:read"]
    refused = _ctxbase("keys", "create", "-d", cli_url, "--scopes", "memories:reed")
    message = " ".join((refused.stderr + refused.stdout).split())
    assert refused.returncode == 1 and "unknown scope 'memories:reed'" in message
    assert "Traceback" not in message
    with open_store(cli_url) as store:
        assert len(store.keys.list().items) == 1
