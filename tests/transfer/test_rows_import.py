"""Moving in at scale and from the command line: 10,000 rows of every kind keep every id,
timestamp and link on SQLite and PostgreSQL; ``ctxbase import --format rows`` and
``POST /projects/{project}/import`` report bad input plainly.

The behaviour of the call itself, on every backend and over HTTP, is in
tests/contract/test_imports.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

import ctxbase
from ctxbase.cli import app
from ctxbase.db.schema import metadata
from ctxbase.records.imports import mapped_id
from ctxbase.server import create_app
from tests.conftest import open_store
from tests.transfer.rows_data import CONVERSATIONS_WITH_MESSAGES, NAMES_VERSIONS, at, source_rows

ROOT = Path(__file__).resolve().parents[2]
COUNT = 10_000
KINDS = ("conversation", "message", "context", "memory", "state", "event")
runner = CliRunner()


def table_rows(store: ctxbase.Store, name: str, *columns: str) -> list[Any]:
    table = metadata.tables[name]
    with store.db.connect() as connection:
        return list(connection.execute(select(*(table.c[c] for c in columns))))


def counts(store: ctxbase.Store) -> dict[str, int]:
    with store.db.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in metadata.tables.items()
        }


@pytest.mark.skip_backend(
    "sqlite-memory",
    "postgres-novector",
    reason="10,000 rows of each kind: the file and pgvector backends cover both engines",
)
def test_ten_thousand_rows_of_each_kind_keep_every_id_time_and_link(store: ctxbase.Store) -> None:
    started = time.monotonic()
    report = store.imports.rows(source_rows(COUNT), batch_size=2000)
    seconds = time.monotonic() - started
    print(f"\n{store.backend}: {6 * COUNT} rows in {seconds:.1f} s ({report.seconds} s inside)")
    assert report.written == dict.fromkeys(KINDS, COUNT)
    assert report.embedded == 3 * COUNT
    assert report.batches == 6 * COUNT // 2000
    assert len(report.ids["conversation"]) == COUNT

    talks = CONVERSATIONS_WITH_MESSAGES
    conversations = {
        r.id: r
        for r in table_rows(
            store, "conversations", "id", "created_at", "updated_at", "message_count",
            "input_tokens", "output_tokens",
        )
    }  # fmt: skip
    for i in range(COUNT):
        row = conversations[mapped_id("conversation", f"conv-{i}")]
        assert (row.created_at, row.updated_at) == (at(i), at(i + 5))
        per_chat = COUNT // talks if i < talks else 0
        assert (row.message_count, row.input_tokens, row.output_tokens) == (
            per_chat, 3 * per_chat, 4 * per_chat
        )  # fmt: skip

    messages = {
        r.id: r
        for r in table_rows(
            store, "messages", "id", "conversation_id", "position", "created_at", "updated_at"
        )
    }
    for i in range(COUNT):
        row = messages[mapped_id("message", i + 1)]
        assert row.conversation_id == mapped_id("conversation", f"conv-{i % talks}")
        assert (row.position, row.created_at, row.updated_at) == (i // talks + 1, at(i), at(i + 1))

    units = {
        r.id: r
        for r in table_rows(
            store, "context_units", "id", "version", "superseded_by", "created_at", "updated_at"
        )
    }
    for i in range(COUNT):
        row = units[mapped_id("context", f"ctx-{i}")]
        last = i % NAMES_VERSIONS == NAMES_VERSIONS - 1
        following = None if last else mapped_id("context", f"ctx-{i + 1}")
        assert (row.version, row.superseded_by) == (i % NAMES_VERSIONS + 1, following)
        assert (row.created_at, row.updated_at) == (at(i), at(i + 7))

    memories = {
        r.id: r
        for r in table_rows(
            store, "memories", "id", "conversation_id", "first_message_id",
            "owner_conversation_id", "access_count", "created_at", "updated_at",
        )
    }  # fmt: skip
    for i in range(COUNT):
        row = memories[mapped_id("memory", f"mem-{i}")]
        owner = mapped_id("conversation", f"conv-{i % 50}") if i % 3 == 0 else None
        assert (row.conversation_id, row.first_message_id, row.owner_conversation_id) == (
            mapped_id("conversation", f"conv-{i % talks}"), mapped_id("message", i % talks + 1),
            owner,
        )  # fmt: skip
        assert (row.access_count, row.created_at, row.updated_at) == (i % 5, at(i), at(i + 2))

    state = {
        r.key: r
        for r in table_rows(
            store, "state_entries", "key", "version", "owner_conversation_id", "created_at",
            "updated_at",
        )
    }  # fmt: skip
    for i in range(COUNT):
        row = state[f"k{i}"]
        owner = mapped_id("conversation", f"conv-{i % 10}") if i % 2 else None
        assert (row.version, row.owner_conversation_id) == (1 + i % 3, owner)
        assert (row.created_at, row.updated_at) == (at(i), at(i + 3))

    events = {r.id: r for r in table_rows(store, "events", "id", "sequence", "created_at")}
    for i in range(COUNT):
        assert events[mapped_id("event", f"ev-{i}")][1:] == (i + 1, at(i))
    assert store.events.last_sequence() == COUNT
    assert store.events.append("after.import").sequence == COUNT + 1

    stored = counts(store)
    assert (stored["embeddings"], stored["memory_changes"]) == (3 * COUNT, COUNT)
    hits = store.search("biscuits", kinds=["message"], mode="text", k=5).hits
    assert len(hits) == 5
    latest = store.contexts.get_latest("src/file7.py")
    assert latest.id == mapped_id("context", f"ctx-{7 * NAMES_VERSIONS + NAMES_VERSIONS - 1}")


# --- over REST -----------------------------------------------------------------------------


def test_rest_import_answers_a_report_or_a_strict_error(tmp_path: Path) -> None:
    with (
        open_store(f"sqlite:///{tmp_path / 'rest.db'}") as store,
        TestClient(create_app(store=store)) as http,
    ):
        url = "/api/v1/projects/default/import"
        rows = source_rows(3)
        answer = http.post(url, json={"rows": rows, "batch_size": 5})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["written"] == dict.fromkeys(KINDS, 3) and body["batches"] == 4
        assert body["ids"]["message"]["1"] == str(mapped_id("message", 1))

        before = counts(store)
        lines = [json.dumps(r) for r in source_rows(1)]  # rows may be lines of JSON text
        lines[1] = lines[1].replace('"role"', '"rolle"')
        answer = http.post(url, json={"rows": lines, "existing": "skip"})
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["code"] == "invalid_input"
        assert "line 2 (message): rolle: unknown field" in error["message"]
        assert "line 2 (message): role: Field required" in error["message"]
        assert ["rows", 1, "rolle"] in [p["location"] for p in error["details"]]
        for wrong in ({"rows": [], "batchsize": 5}, {"rows": [], "batch_size": "x"}, {}):
            answer = http.post(url, json=wrong)
            assert answer.status_code == 422, wrong
            assert answer.json()["error"]["code"] == "invalid_input"
        answer = http.post(url, json={"rows": rows})
        assert answer.status_code == 409 and "already in project" in answer.text
        assert http.post("/api/v1/projects/nowhere/import", json={"rows": rows}).status_code == 404
        assert counts(store) == before


# --- from the command line -----------------------------------------------------------------


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_cli_imports_a_file_batch_by_batch_and_writes_the_id_mapping(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with open_store(url) as store:
        store.projects.create("legacy")
    rows = source_rows(50)
    source = write_rows(tmp_path / "rows.jsonl", rows)
    mapping = tmp_path / "ids.jsonl"
    code, output = run(
        "-d", url, "import", "--format", "rows", str(source), "--project", "legacy",
        "--batch-size", "40", "--map-file", str(mapping),
    )  # fmt: skip
    assert code == 0, output
    assert "Imported 300 row(s)" in output and "in 8 batch(es)" in output
    entries = [json.loads(line) for line in mapping.read_text().splitlines()]
    assert {"kind": "message", "original": "7", "id": str(mapped_id("message", 7))} in entries
    assert len(entries) == 250  # every id but the state entries' (they have none)
    with open_store(url) as store:
        assert store.conversations.get(
            mapped_id("conversation", "conv-3"), project="legacy"
        ).created_at == at(3)

    # A broken line: its batch writes nothing; the batches before it stay; the same
    # command with --skip-existing continues once the line is fixed.
    with open_store(url) as store:
        store.projects.create("second")
    more = source_rows(60)
    more[181] = {**more[181], "first_message_id": 999_999}  # line 182: the second batch
    write_rows(source, more)
    # The same source ids, in a second project: mapped in a namespace of their own.
    namespace = str(uuid.uuid4())
    command = [
        "-d", url, "import", "--format", "rows", str(source), "--project", "second",
        "--id-namespace", namespace,
    ]  # fmt: skip
    result = runner.invoke(app, [*command, "--batch-size", "100"])
    assert result.exit_code == 1
    said = str(result.exception)
    assert "line 182 (memory): first_message_id: 999999 names no message" in said
    assert "Nothing of this batch (lines 101 to 200) was written" in said
    assert "Lines 1 to 100 were written by earlier batches" in said
    assert "--skip-existing" in said
    write_rows(source, source_rows(60))
    code, output = run(*command, "--batch-size", "100", "--skip-existing")
    assert code == 0, output
    assert "Imported 260 row(s)" in output
    with open_store(url) as store:
        assert store.events.last_sequence(project="second") == 60


def test_cli_refuses_wrong_input_with_a_message_and_no_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "conversation", "id": 1}\n\n{"kind": "message", "role": "user"\n')
    for args, said in [
        ([str(bad)], "line 3: not JSON"),
        ([str(tmp_path / "absent.jsonl")], "No such file"),
        ([str(bad), "--id-namespace", "nope"], "--id-namespace must be a UUID"),
        ([str(bad), "--project", "nowhere"], "No project 'nowhere'"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "ctxbase", "-d", url, "import", "--format", "rows", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            check=False,
        )
        assert result.returncode == 1, result.stderr
        assert said in result.stderr and "Traceback" not in result.stderr, result.stderr
    result = runner.invoke(app, ["-d", url, "import", str(bad), "--project", "legacy"])
    assert result.exit_code == 1 and "go with --format rows" in str(result.exception)
    result = runner.invoke(app, ["-d", url, "import", "--format", "csv", str(bad)])
    assert result.exit_code == 1 and "not 'csv'" in str(result.exception)


def test_an_imported_mapping_is_the_same_in_every_database(
    tmp_path: Path, persistent_database_url: str
) -> None:
    rows = source_rows(5)
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as first:
        expected = first.imports.rows(rows).ids
    with open_store(persistent_database_url) as second:
        assert second.imports.rows(rows).ids == expected
        assert second.conversations.get(expected["conversation"]["conv-4"]).title == "chat 4"
    assert all(isinstance(v, uuid.UUID) for m in expected.values() for v in m.values())
