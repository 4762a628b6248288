"""``ctxbase --version``, ``ctxbase stats``, ``db downgrade -1`` and ``-d URL`` after the
command's name, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

import ctxbase
from ctxbase.cli import app
from ctxbase.db import migrate
from tests.conftest import open_store

runner = CliRunner()
#: Commands that read no settings, so take no database.
WITHOUT_A_DATABASE = {"db history", "version", "secrets generate-key"}


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def ctxbase_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctxbase", *args], capture_output=True, text=True, timeout=120
    )


def previous(revision: str, steps: int = 1) -> str:
    """The revision ``steps`` below ``revision``."""
    down = {rev.revision: rev.down_revision for rev in migrate.history()}
    for _ in range(steps):
        found = down[revision]
        assert found is not None
        revision = found
    return revision


# --- --version ---------------------------------------------------------------------------


def test_version_flag_prints_the_version_and_exits_0() -> None:
    process = ctxbase_process("--version")
    assert process.returncode == 0, process.stderr
    assert process.stdout == f"ctxbase {ctxbase.__version__}\n"
    assert process.stderr == ""


def test_version_flag_needs_no_database(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "x.db"
    code, output = run("-d", f"sqlite:///{missing}", "--version")
    assert (code, output) == (0, f"ctxbase {ctxbase.__version__}\n")
    assert not missing.parent.exists()


# --- -d URL after the command ------------------------------------------------------------


def test_the_database_url_comes_before_or_after_the_command(
    persistent_database_url: str, tmp_path: Path
) -> None:
    url, head = persistent_database_url, migrate.head_revision()
    code, output = run("db", "upgrade", "-d", url)
    assert code == 0 and f"→ {head}" in output, output
    for args in (
        ["-d", url, "db", "current"],
        ["db", "current", "-d", url],
        ["db", "current", "--database-url", url],
        [f"--database-url={url}", "db", "current"],
        ["db", "current", f"--database-url={url}"],
    ):
        code, output = run(*args)
        assert code == 0 and f"{head} (up to date)" in output, (args, output)
    elsewhere = tmp_path / "elsewhere" / "x.db"  # given first, then replaced: never opened
    code, output = run("-d", f"sqlite:///{elsewhere}", "keys", "list", "-d", url)
    assert code == 0 and "prefix" in output
    assert not elsewhere.parent.exists()


def test_every_command_that_takes_a_database_takes_it_after_its_name() -> None:
    root = typer.main.get_command(app)
    checked = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        for path, leaf in _leaves(name, command):
            options = {o for p in leaf.params for o in getattr(p, "opts", [])}
            takes = {"--database-url", "-d"} <= options
            assert takes == (path not in WITHOUT_A_DATABASE), path
            checked.append(path)
    assert {"migrate", "export", "stats", "db upgrade", "keys create", "serve"} <= set(checked)


def _leaves(name: str, command: object) -> list[tuple[str, object]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        return [(name, command)]
    return [(f"{name} {sub}", leaf) for sub, leaf in subcommands.items()]


def test_a_command_without_a_database_refuses_the_option() -> None:
    process = ctxbase_process("db", "history", "-d", "sqlite:///x.db")
    assert process.returncode == 2 and "No such option" in process.stderr
    assert "Traceback" not in process.stderr


# --- db downgrade -1 ---------------------------------------------------------------------


def test_downgrade_by_relative_steps(persistent_database_url: str) -> None:
    url, head = persistent_database_url, migrate.head_revision()
    assert run("-d", url, "db", "upgrade")[0] == 0
    code, output = run("db", "downgrade", "-1", "-d", url)
    assert code == 0 and f"{head} → {previous(head)}" in output, output
    code, output = run("db", "downgrade", "-d", url, "-2")
    assert code == 0 and f"{previous(head)} → {previous(head, 3)}" in output, output
    code, output = run("-d", url, "db", "downgrade", "--", "-1")
    assert code == 0 and f"→ {previous(head, 4)}" in output, output
    code, output = run("-d", url, "db", "upgrade", "+2")
    assert code == 0 and f"→ {previous(head, 2)}" in output, output
    assert run("-d", url, "db", "upgrade")[0] == 0


def test_a_downgrade_past_the_first_revision_is_a_message(persistent_database_url: str) -> None:
    url = persistent_database_url
    assert run("-d", url, "db", "upgrade")[0] == 0
    process = ctxbase_process("-d", url, "db", "downgrade", "-99")
    assert process.returncode == 1, process.stderr
    assert "Error" in process.stderr and "Traceback" not in process.stderr
    with open_store(url) as store:  # nothing changed
        assert store.check_connection().schema_revision == migrate.head_revision()
    process = ctxbase_process("-d", url, "db", "downgrade", "-1", "-2")
    assert process.returncode == 2 and "Traceback" not in process.stderr


# --- stats -------------------------------------------------------------------------------


def _fill(url: str) -> None:
    with open_store(url) as store:
        chat = store.conversations.create(title="billing")
        store.messages.append(chat.id, role="user", content="Why does the total drift?")
        store.messages.append(chat.id, role="assistant", content="Rounding, twice.")
        store.projects.create("research")
        memory = store.memories.add("tea is a leaf", project="research")
        store.memories.update(memory.id, content="tea is a dried leaf", project="research")
        store.state.put("plan", {"step": 1}, namespace="agents/coder", project="research")


def test_stats_per_table_and_per_project(persistent_database_url: str) -> None:
    url = persistent_database_url
    _fill(url)
    result = runner.invoke(app, ["stats", "-d", url, "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    tables = {t["table"]: t for t in figures["tables"]}
    assert tables["messages"]["rows"] == 2 and tables["conversations"]["rows"] == 1
    assert tables["memory_changes"]["rows"] == 2 and tables["state_entries"]["rows"] == 1
    assert figures["total_rows"] == sum(t["rows"] for t in figures["tables"])
    assert all(t["bytes"] and t["bytes"] > 0 for t in figures["tables"])
    assert figures["total_bytes"] == sum(t["bytes"] for t in figures["tables"])
    assert figures["schema_revision"] == migrate.head_revision()
    projects = {(p["tenant"], p["project"]): p for p in figures["projects"]}
    default, research = projects[("default", "default")], projects[("default", "research")]
    assert default["rows"]["conversations"] == 1 and default["rows"]["messages"] == 2
    assert "memories" not in default["rows"]
    assert research["rows"]["memories"] == 1 and research["rows"]["memory_changes"] == 2
    assert research["rows"]["state_entries"] == 1
    assert research["total_rows"] == sum(research["rows"].values())
    assert 0 < default["bytes"] + research["bytes"] <= figures["total_bytes"]

    code, output = run("-d", url, "stats")
    assert code == 0
    for shown in ("Tables", "Projects", "default/research", "memory_changes", "KiB"):
        assert shown in output, shown


def test_stats_of_a_database_without_the_schema(persistent_database_url: str) -> None:
    url = persistent_database_url
    if url.startswith("sqlite:///"):
        import sqlite3

        sqlite3.connect(url.removeprefix("sqlite:///")).close()
    code, output = run("stats", "-d", url)
    assert code == 0 and "schema empty" in output and "0 row(s)" in output
    code, output = run("stats", "-d", url, "--json")
    assert json.loads(output)["tables"] == [] and json.loads(output)["projects"] == []


@pytest.mark.parametrize(
    "url",
    ["sqlite:///{tmp}/typo/agents.db", "postgresql://u:topsecret@127.0.0.1:1/db", "mysql://h/db"],
)
def test_stats_of_a_database_that_is_not_there_is_a_message(url: str, tmp_path: Path) -> None:
    process = ctxbase_process("stats", "-d", url.format(tmp=tmp_path))
    assert process.returncode == 1
    assert "Error" in process.stderr and "Traceback" not in process.stderr
    assert "topsecret" not in process.stderr + process.stdout
    assert not (tmp_path / "typo").exists()
