"""Progress of export, import, backup and restore: bars on a terminal, one plain line per
phase otherwise, nothing with ``--quiet``; standard output keeps only the result."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ctxbase.cli import app, common
from ctxbase.db.database import Database
from ctxbase.transfer.archive import export_archive, import_archive
from ctxbase.transfer.backup import backup, restore
from tests.conftest import open_store
from tests.transfer.rows_data import source_rows

runner = CliRunner()
MEMORIES = 30


@pytest.fixture
def filled(persistent_database_url: str) -> str:
    with open_store(persistent_database_url) as store:
        chat = store.conversations.create(title="billing")
        store.messages.append(chat.id, role="user", content="Why does the total drift?")
        for i in range(MEMORIES):
            store.memories.add(f"fact {i} about tea")
    return persistent_database_url


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_without_a_terminal_one_plain_line_per_phase(filled: str, tmp_path: Path) -> None:
    archive, copy = tmp_path / "a.ctxb", f"sqlite:///{tmp_path / 'copy.db'}"
    code, stdout, stderr = invoke("-d", filled, "export", "-o", str(archive))
    assert code == 0, stderr
    assert stdout.startswith("Exported") and "Exporting" not in stdout
    announced = stderr.removeprefix("Exporting: ").split(" row(s)")[0]
    assert stderr.startswith("Exporting: ") and stdout.startswith(f"Exported {announced} row(s)")
    code, stdout, stderr = invoke("-d", copy, "import", str(archive))
    assert (code, stderr) == (0, "Importing…\n"), stderr
    assert stdout.startswith("Imported")
    code, stdout, stderr = invoke("-d", copy, "restore", str(archive), "--yes")
    assert code == 0
    assert stderr.startswith("Checking the backup…\nRestoring: ") and "Restored" in stdout
    backup_file = tmp_path / "b.bak"
    code, stdout, stderr = invoke("-d", filled, "backup", "-o", str(backup_file))
    assert code == 0 and stdout.startswith("Backup of")
    assert stderr.startswith(("Backing up…", "Exporting: "))  # pg_dump, or an archive
    rows = tmp_path / "rows.jsonl"  # another system's rows: counted, in no table
    rows.write_text("".join(json.dumps(row) + "\n" for row in source_rows(2)))
    code, stdout, stderr = invoke("-d", filled, "import", "--format", "rows", str(rows))
    assert (code, stderr) == (0, f"Importing: {len(source_rows(2))} row(s)…\n"), stderr
    assert "Imported" in stdout


def test_quiet_shows_no_progress(filled: str, tmp_path: Path) -> None:
    archive, copy = tmp_path / "a.ctxb", f"sqlite:///{tmp_path / 'copy.db'}"
    backup_file = tmp_path / "b.bak"
    for args in (
        ["-d", filled, "export", "-o", str(archive), "--quiet"],
        ["-d", copy, "import", str(archive), "-q"],
        ["-d", copy, "restore", str(archive), "--yes", "--quiet"],
        ["-d", copy, "backup", "-o", str(backup_file), "--quiet"],
        ["-d", copy, "restore", str(backup_file), "--yes", "--quiet"],
    ):
        code, stdout, stderr = invoke(*args)
        assert (code, stderr) == (0, ""), (args, stderr)
        assert stdout


def test_on_a_terminal_bars_per_table_on_stderr_only(
    filled: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=120, color_system=None)
    monkeypatch.setattr(common, "err", console)
    archive, copy = tmp_path / "a.ctxb", f"sqlite:///{tmp_path / 'copy.db'}"
    code, stdout, stderr = invoke("-d", filled, "export", "-o", str(archive))
    assert code == 0 and stdout.startswith("Exported") and stderr == ""
    shown = terminal.getvalue()
    assert "exporting memories" in shown and f"{MEMORIES}/{MEMORIES}" in shown
    assert "exporting api_keys" not in shown  # nothing to move: no bar

    terminal.truncate(0)
    assert invoke("-d", copy, "import", str(archive))[0] == 0
    shown = terminal.getvalue()
    assert "importing memories" in shown and f"{MEMORIES}/{MEMORIES}" in shown  # filled at end

    terminal.truncate(0)
    code, stdout, _ = invoke("-d", copy, "restore", str(archive), "--yes")
    assert code == 0 and "restoring" not in stdout
    shown = terminal.getvalue()
    assert "checking the backup" in shown and "restoring memories" in shown
    assert "✓" in shown  # the step is marked done


def test_the_library_reports_phases_and_rows(filled: str, tmp_path: Path) -> None:
    db = Database(filled)
    try:
        phases: list[tuple[str, dict[str, int | None]]] = []
        moved: Counter[str] = Counter()

        def on_phase(name: str, totals: object) -> None:
            phases.append((name, dict(totals)))  # type: ignore[call-overload]

        def progress(table: str, rows: int) -> None:
            moved[table] += rows

        archive = tmp_path / "a.ctxb"
        report = export_archive(db, archive, progress=progress, on_phase=on_phase)
        assert phases == [("exporting", report.rows)]
        assert report.rows["memories"] == MEMORIES
        assert dict(moved) == {t: n for t, n in report.rows.items() if n}

        phases.clear()
        moved.clear()
        copy = Database(f"sqlite:///{tmp_path / 'copy.db'}")
        try:
            imported = import_archive(copy, archive, progress=progress, on_phase=on_phase)
            [(name, totals)] = phases
            assert name == "importing" and set(totals) == set(report.rows)
            assert set(totals.values()) == {None}  # known only at the archive's end
            assert dict(moved) == imported.rows

            phases.clear()
            restore(copy, archive, progress=progress, on_phase=on_phase)
            assert [name for name, _ in phases] == ["checking the backup", "restoring"]
            assert phases[1][1] == {t: n for t, n in report.rows.items() if n}
        finally:
            copy.dispose()

        phases.clear()
        made = backup(db, tmp_path / "b.bak", progress=progress, on_phase=on_phase)
        expected = "exporting" if made.method == "export" else "backing up"
        assert [name for name, _ in phases] == [expected]
    finally:
        db.dispose()
