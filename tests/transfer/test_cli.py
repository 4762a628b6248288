"""The data-moving and database commands of the ``ctxbase`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ctxbase.cli import app
from ctxbase.errors import InvalidInputError
from tests.postgres import PostgresServer
from tests.transfer.data import assert_same_data

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def test_migrate_with_a_json_report(source_url: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    code, output = run("migrate", "--from", source_url, "--to", target, "--json")
    assert code == 0, output
    report = json.loads(output[output.index("{") :])
    assert report["status"] == "completed" and report["verification"]["passed"]
    assert_same_data(source_url, target)
    code, output = run("migrate", "--from", source_url, "--to", target)
    assert code == 1 and "already holds rows" in str(
        runner.invoke(app, ["migrate", "--from", source_url, "--to", target]).exception
    )


def test_errors_are_messages_on_stderr_never_tracebacks(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctxbase",
            "migrate",
            "--from",
            "postgresql://someone:hunter2@localhost:1/nowhere",
            "--to",
            f"sqlite:///{tmp_path / 't.db'}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ,
    )
    assert result.returncode == 1
    assert "Error:" in result.stderr and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_export_import_backup_restore(source_url: str, tmp_path: Path) -> None:
    archive, copy = tmp_path / "a.jsonl.gz", f"sqlite:///{tmp_path / 'copy.db'}"
    assert run("-d", source_url, "export", "-o", str(archive), "--with-embeddings")[0] == 0
    code, output = run("-d", copy, "import", str(archive))
    assert code == 0 and "Imported" in output
    assert_same_data(source_url, copy, ["memories", "embeddings", "context_units"])
    backup_file = tmp_path / "b.db"
    code, output = run("-d", source_url, "backup", "-o", str(backup_file))
    assert code == 0 and "sqlite-backup" in output
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    assert run("-d", restored, "restore", str(backup_file), "--yes")[0] == 0
    assert_same_data(source_url, restored)


def test_databases_commands(tmp_path: Path, postgres: PostgresServer) -> None:
    home = f"sqlite:///{tmp_path / 'home.db'}"
    with postgres.database() as url:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        socket_dir = parsed.query["host"]
        code, output = run(
            "-d",
            home,
            "databases",
            "add",
            "prod",
            "--host",
            str(socket_dir),
            "--database",
            str(parsed.database),
            "--user",
            str(parsed.username),
            "--password-stdin",
            stdin="s3cret-pass\n",
        )
        assert code == 0, output
        code, output = run("-d", home, "databases", "test", "prod")
        assert code == 0 and "pgvector" in output and "schema: empty" in output
        code, output = run("-d", home, "databases", "init", "prod", "--require-pgvector")
        assert code == 0 and "status: ok" in output, output
        code, output = run("-d", home, "databases", "stats", "prod")
        assert code == 0 and "memories" in output
        code, output = run("-d", home, "databases", "activate", "prod")
        assert code == 0 and "prod is active" in output
        code, output = run("-d", home, "databases", "list")
        assert code == 0 and "prod" in output and "active" in output
        assert "s3cret-pass" not in output
        code, output = run(
            "-d", home, "migrate", "--from", home, "--to", "prod", "--tables", "tenants,projects"
        )
        assert code == 0, output
        assert run("-d", home, "databases", "deactivate")[0] == 0
        assert run("-d", home, "databases", "remove", "prod")[0] == 0
        assert "prod" not in run("-d", home, "databases", "list")[1]


def test_export_and_backup_failures_are_messages_and_leave_no_partial(
    source_url: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctxbase",
            "-d",
            source_url,
            "export",
            "-o",
            str(tmp_path / "missing" / "x.gz"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "1000"},  # one line per message
    )
    assert result.returncode == 1
    assert "Error:" in result.stderr and "no directory" in result.stderr
    assert "Traceback" not in result.stderr
    # a path taken by a directory: the file is written whole, then cannot take the name
    for command, name in (("export", "taken.gz"), ("backup", "taken.db")):
        (tmp_path / name).mkdir()
        outcome = runner.invoke(app, ["-d", source_url, command, "-o", str(tmp_path / name)])
        assert outcome.exit_code == 1
        assert isinstance(outcome.exception, InvalidInputError), outcome.exception
        assert not (tmp_path / f"{name}.partial").exists()


def test_commands_that_read_a_database_never_create_one(source_url: str, tmp_path: Path) -> None:
    absent = tmp_path / "absent" / "store.db"
    target = tmp_path / "target.db"
    for args in (
        ["-d", f"sqlite:///{absent}", "export", "-o", str(tmp_path / "x.gz")],
        ["-d", f"sqlite:///{absent}", "backup", "-o", str(tmp_path / "x.db")],
        ["migrate", "--from", f"sqlite:///{absent}", "--to", f"sqlite:///{target}"],
        [
            "migrate",
            "--resume",
            "01234567-89ab-7def-8123-456789abcdef",
            "--to",
            f"sqlite:///{absent}",
        ],
    ):
        outcome = runner.invoke(app, args)
        assert outcome.exit_code == 1, args
        assert isinstance(outcome.exception, InvalidInputError), (args, outcome.exception)
        assert "does not exist" in outcome.exception.message
    assert not absent.parent.exists() and not target.exists()
    assert not list(tmp_path.glob("x.*"))
