"""A migration killed with SIGKILL at several points, then resumed: nothing duplicated or
missing, verification passes. Also cancel and resume, in process."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from ctxbase import transfer
from ctxbase.db.database import Database
from ctxbase.db.schema import MigrationJob, table
from ctxbase.errors import ConflictError
from tests.transfer.data import assert_same_data, cancel_after, settings, target_database

ROOT = Path(__file__).resolve().parents[2]


def _progress(target: str) -> float:
    with Database(target) as db, db.connect() as connection:
        value = connection.execute(select(table(MigrationJob).c.progress)).scalar()
    return float(value or 0)


def _start(source: str, target: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ctxbase",
            "migrate",
            "--from",
            source,
            "--to",
            target,
            "--batch-size",
            "40",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"Migration job ([0-9a-f-]{36})", line)
    assert match, line
    return process, match.group(1)


@pytest.mark.parametrize(
    ("kind", "kill_at"),
    [("postgres", 0.1), ("postgres", 0.5), ("postgres", 0.85), ("sqlite-file", 0.5)],
)
def test_sigkill_then_resume(
    source_url: str, kind: str, kill_at: float, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with target_database(kind, request, tmp_path) as target_url:
        _kill_and_resume(source_url, target_url, kill_at)


def _kill_and_resume(source_url: str, target_url: str, kill_at: float) -> None:
    job_id = kill_midway(source_url, target_url, kill_at)
    report = transfer.resume(job_id, target_url, settings=settings())
    assert report.status == "completed", report.error_log
    assert report.verification is not None and report.verification.passed
    assert_same_data(source_url, target_url)


def kill_midway(source_url: str, target_url: str, kill_at: float) -> str:
    """Start ``ctxbase migrate``, SIGKILL it near ``kill_at`` of its progress; its job id."""
    process, job_id = _start(source_url, target_url)
    point = kill_at + random.uniform(-0.05, 0.05)
    deadline = time.monotonic() + 120
    try:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if _progress(target_url) >= point * 100:
                    break
            except Exception:  # the job row is not there yet
                pass
            time.sleep(0.02)
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"the migration ended before it could be killed: {process.stderr.read()}")
        process.kill()  # SIGKILL: no cleanup of any kind
    finally:
        process.wait()
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    assert _progress(target_url) > 0  # killed while running: some batches committed
    _assert_no_survivor(target_url)
    return job_id


def _assert_no_survivor(target_url: str) -> None:
    """No process of the killed job goes on writing: its worker (a fork, with the same
    command line) dies with it."""
    if sys.platform != "linux":
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:  # ended meanwhile
                continue
            if b"migrate" in command and target_url.encode() in command:
                alive.append(pid)
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"processes of the killed job still run: {alive}")


def test_cancel_then_resume(source_url: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    cancel, cancel_midway = cancel_after("memories", 500)
    first = transfer.migrate(
        source_url,
        target,
        batch_size=100,
        on_progress=cancel_midway,
        cancel=cancel,
        settings=settings(),
    )
    assert first.status == "cancelled"
    assert 0 < first.progress.percent < 100
    second = transfer.resume(first.id, target, settings=settings())
    assert second.status == "completed"
    assert_same_data(source_url, target)
    with pytest.raises(ConflictError):
        transfer.resume(first.id, target, settings=settings())
