"""The code-context assistant (reference system 000) moves in.

Its guide keeps context units with supersession, conversations and messages, in memory,
in SQLite or in PostgreSQL; it initialises the database, migrates from in-memory
storage and checks the count over the API, backs up and restores, resets, counts rows,
and copes with "database locked". Each step here is ctxbase's public API doing the same.

Its tables map onto ctxbase's records as follows:

- ``context_units`` → context units: ``source_type``, ``name``, ``content``, ``metadata``,
  ``created_at``, ``updated_at``, ``superseded_by`` as they are; ``embedding`` is the
  unit's stored vector (searched by ``store.search(kinds=["context"])``).
- ``conversations`` → conversations: ``task``, ``provider``, ``model``, ``created_at``.
- ``messages`` → messages: the auto-incrementing integer ``id`` orders a conversation's
  messages, which is ``position`` (1, 2, 3, … per conversation); ``timestamp`` is
  ``created_at``; ``tokens`` is ``output_tokens`` (or ``input_tokens`` for a prompt);
  ``role`` and ``finish_reason`` as they are.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import ctxbase
from ctxbase import transfer
from ctxbase.db import migrate
from ctxbase.errors import ConflictError, NotFoundError
from ctxbase.records.imports import mapped_id
from tests.conftest import open_store, run_in_threads
from tests.scenarios.conftest import cli, ok, serve

APP_PY = "def main():\n    print('hello')\n"
APP_PY_V2 = "def main():\n    print('hello, world')\n"


def table_rows(url: str) -> dict[str, int]:
    """Rows per table, as ``ctxbase stats --json`` prints them ("View Database Statistics")."""
    figures = json.loads(ok("stats", "-d", url, "--json"))
    return {table["table"]: table["rows"] for table in figures["tables"]}


def fill(store: ctxbase.Store) -> dict[str, object]:
    """The assistant's working set: files, a directory, a symbol, and one conversation."""
    units = [
        store.contexts.add("src/app.py", APP_PY, source_type="file", metadata={"lang": "py"}),
        store.contexts.add("src", "app.py util.py", source_type="directory"),
        store.contexts.add(
            "src/app.py::main", "def main()", source_type="code_symbol", metadata={"line": 1}
        ),
    ]
    chat = store.conversations.create(
        task="Explain what main() prints", provider="anthropic", model="claude-sonnet-4"
    )
    messages = store.messages.append_many(
        chat.id,
        [
            {"role": "system", "content": "You are a code assistant."},
            {"role": "user", "content": "What does main() print?", "input_tokens": 9},
            {
                "role": "assistant",
                "content": "It prints hello.",
                "output_tokens": 5,
                "finish_reason": "stop",
            },
        ],
    )
    return {"units": units, "chat": chat, "messages": messages}


# --- Storage options and Quick Start ----------------------------------------------------


def test_in_memory_storage_keeps_nothing_between_restarts() -> None:
    """Option 1 (development only): nothing persists between restarts."""
    with open_store("sqlite://") as store:
        store.contexts.add("src/app.py", APP_PY, source_type="file")
        assert store.contexts.get_latest("src/app.py").content == APP_PY
    with open_store("memory://") as store, pytest.raises(NotFoundError):
        store.contexts.get_latest("src/app.py")


def test_initialise_the_database_then_start(database_url: str) -> None:
    """Quick Start: configure the URL, initialise the database, start; data persists.

    ``CONTEXTPILOT_DATABASE_URL`` is ``CTXBASE_DATABASE_URL``, ``CONTEXTPILOT_DATABASE_ECHO``
    is ``CTXBASE_DATABASE_ECHO``; ``python init_db.py`` is ``ctxbase db upgrade``, and
    running it on an initialised database is no error ("table context_units already
    exists" cannot happen)."""
    env = {"CTXBASE_DATABASE_URL": database_url, "CTXBASE_DATABASE_ECHO": "false"}
    head = migrate.head_revision()
    assert f"→ {head}" in ok("db", "upgrade", env=env)
    assert "(up to date)" in ok("db", "current", env=env)
    ok("db", "upgrade", env=env)  # again: nothing to do, no error
    with open_store(database_url, auto_migrate=False) as store:  # "start the server"
        store.contexts.add("src/app.py", APP_PY, source_type="file")
    with open_store(database_url, auto_migrate=False) as store:  # restarted: still there
        assert store.contexts.get_latest("src/app.py").content == APP_PY
    assert "(up to date)" in ok("db", "current", "-d", database_url)


# --- Database schema --------------------------------------------------------------------


def test_context_units_with_supersession_and_embeddings(store: ctxbase.Store) -> None:
    """``context_units``: every column, the ``superseded_by`` chain, a renamed file and a
    merged one, and the embedding searched by similarity."""
    unit = store.contexts.add(
        "src/app.py", APP_PY, source_type="file", metadata={"lang": "py", "lines": 2}
    )
    assert (unit.source_type, unit.name, unit.content, unit.metadata) == (
        "file",
        "src/app.py",
        APP_PY,
        {"lang": "py", "lines": 2},
    )
    assert unit.superseded_by is None and unit.created_at.tzinfo is not None
    assert unit.updated_at >= unit.created_at
    assert store.contexts.add("src/app.py", APP_PY).id == unit.id  # same content: deduped

    v2 = store.contexts.update(unit.id, content=APP_PY_V2)
    assert store.contexts.get(unit.id).superseded_by == v2.id and v2.version == 2
    with pytest.raises(ConflictError):  # the old version is no longer the one to change
        store.contexts.update(unit.id, content="stale")
    assert store.contexts.get_latest("src/app.py").id == v2.id
    assert store.contexts.get_version("src/app.py", 1).content == APP_PY

    # A renamed file supersedes its old name; a merged one supersedes a unit of another name.
    renamed = store.contexts.update(v2.id, content=APP_PY_V2, name="src/main.py")
    helper = store.contexts.add("src/util.py", "def helper(): ...", source_type="file")
    merged = store.contexts.add(
        "src/main.py", APP_PY_V2 + "def helper(): ...", source_type="file", supersedes=helper.id
    )
    assert store.contexts.get(renamed.id).superseded_by == merged.id
    assert store.contexts.get(helper.id).superseded_by == merged.id
    with pytest.raises(NotFoundError) as moved:
        store.contexts.get_latest("src/app.py")
    assert "src/main.py" in json.dumps(moved.value.details)
    lineage = [(u.name, u.version) for u in store.contexts.versions(unit.id)]
    assert lineage == [  # oldest first, the merged-in file among them
        ("src/app.py", 1),
        ("src/util.py", 1),
        ("src/app.py", 2),
        ("src/main.py", 3),
        ("src/main.py", 4),
    ], lineage

    # The current context, without what was superseded; and by source type.
    current = store.contexts.list(include_superseded=False).items
    assert [u.id for u in current] == [merged.id]
    everything = store.contexts.list(include_superseded=True, limit=100).items
    assert {u.id for u in everything} == {unit.id, v2.id, renamed.id, helper.id, merged.id}
    store.contexts.add("src", "main.py", source_type="directory")
    assert [u.name for u in store.contexts.list(source_type="directory").items] == ["src"]

    # The embedding column: the current unit is found by similarity; superseded ones not.
    found = store.search("def helper", kinds=["context"], mode="vector", threshold=0.1, k=10).hits
    assert found and found[0].id == merged.id and found[0].retrieval_method == "vector"
    assert {hit.id for hit in found} <= {merged.id, store.contexts.get_latest("src").id}


def test_conversations_and_messages(store: ctxbase.Store) -> None:
    """``conversations`` and ``messages``: the columns, the order, token counts."""
    data = fill(store)
    chat = store.conversations.get(data["chat"].id)  # type: ignore[attr-defined]
    assert (chat.task, chat.provider, chat.model) == (
        "Explain what main() prints",
        "anthropic",
        "claude-sonnet-4",
    )
    assert chat.created_at <= datetime.now(UTC)
    listed = store.messages.list(chat.id).items
    assert [(m.position, m.role) for m in listed] == [
        (1, "system"),
        (2, "user"),
        (3, "assistant"),
    ]
    answer = listed[2]
    assert (answer.content, answer.output_tokens, answer.finish_reason) == (
        "It prints hello.",
        5,
        "stop",
    )
    assert listed[1].finish_reason is None and listed[1].input_tokens == 9
    assert listed[0].created_at <= listed[1].created_at <= listed[2].created_at
    assert (chat.input_tokens, chat.output_tokens, chat.message_count) == (9, 5, 3)
    later = store.messages.append(chat.id, role="user", content="And then?")
    assert later.position == 4
    assert [m.position for m in store.messages.list(chat.id, after=2).items] == [3, 4]
    # The foreign key: no message without its conversation.
    with pytest.raises(NotFoundError):
        store.messages.append(ctxbase_uuid(), role="user", content="orphan")
    # Conversations by date.
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert [c.id for c in store.conversations.list(created_after=yesterday).items] == [chat.id]
    assert store.conversations.list(created_before=yesterday).items == []


def ctxbase_uuid() -> str:
    return "01900000-0000-7000-8000-000000000000"


# --- Migration from in-memory storage --------------------------------------------------


def test_migration_from_in_memory_storage(database_url: str) -> None:
    """Steps 1 to 5: a populated in-memory store is migrated into the database, the count is
    checked over the API (``curl /contexts | jq length``), and the server restarted on the
    database serves the same context."""
    with open_store("sqlite://") as memory:  # 1. the server runs in memory, populated
        fill(memory)
        for i in range(60):
            memory.contexts.add(f"src/mod_{i}.py", f"x = {i}\n", source_type="file")
        expected = sorted(u.name for u in page_all(memory.contexts.list, limit=100))
        # 2. migrate_to_db.py (with the store's settings: the library reads no environment)
        report = transfer.migrate(memory, database_url, settings=memory.settings)
    assert report.status == "completed", report.error_log
    assert report.verification is not None and report.verification.passed

    with open_store(database_url) as store, serve(store) as server:  # 4, 5. restarted
        with server.client() as client:  # 3. verify over the API
            names = sorted(u.name for u in page_all(client.contexts.list, limit=25))
            assert names == expected and len(names) == 63
            chat = client.conversations.list().items[0]
            assert [m.role for m in client.messages.list(chat.id).items] == [
                "system",
                "user",
                "assistant",
            ]
            hits = client.search("what does main print", kinds=["message"], mode="text").hits
            assert hits and hits[0].item.conversation_id == chat.id


def page_all(list_call: object, **arguments: object) -> list:  # type: ignore[type-arg]
    """Every item of a paginated list."""
    items, cursor = [], None
    while True:
        page = list_call(cursor=cursor, **arguments)  # type: ignore[operator]
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items


# --- Database management ----------------------------------------------------------------


def test_backup_and_restore(database_url: str, tmp_path: Path) -> None:
    """Backup SQLite (``cp``) / PostgreSQL (``pg_dump``), and restore: ``ctxbase backup`` and
    ``ctxbase restore`` on either backend."""
    with open_store(database_url) as store:
        data = fill(store)
    backup = tmp_path / "contextpilot.backup"
    ok("backup", "-d", database_url, "-o", str(backup), "--quiet")
    assert backup.stat().st_size > 0

    with open_store(database_url) as store:  # work goes on after the backup, then is lost
        store.contexts.add("src/new.py", "new = True\n", source_type="file")
        store.conversations.delete(data["chat"].id)  # type: ignore[attr-defined]

    ok("restore", str(backup), "-d", database_url, "--yes", "--quiet")
    with open_store(database_url) as store:
        names = {u.name for u in store.contexts.list(limit=100).items}
        assert names == {"src/app.py", "src", "src/app.py::main"}
        chat = store.conversations.get(data["chat"].id)  # type: ignore[attr-defined]
        assert [m.content for m in store.messages.list(chat.id).items][-1] == "It prints hello."
        assert store.search("hello", kinds=["message"], mode="text").hits


def test_view_statistics_and_reset(database_url: str) -> None:
    """ "View Database Statistics" (``SELECT COUNT(*) FROM context_units``) and "Reset
    Database" (``drop_db(); init_db()``)."""
    with open_store(database_url) as store:
        fill(store)
        store.contexts.update(store.contexts.get_latest("src/app.py").id, content=APP_PY_V2)
    rows = table_rows(database_url)
    assert rows["context_units"] == 4  # three units, one of them in two versions
    assert (rows["conversations"], rows["messages"]) == (1, 3)

    result = cli("db", "reset", "-d", database_url)  # asks first
    assert result.exit_code != 0
    assert table_rows(database_url)["context_units"] == 4
    ok("db", "reset", "--yes", "-d", database_url)
    rows = table_rows(database_url)
    assert rows["context_units"] == rows["conversations"] == rows["messages"] == 0
    assert "(up to date)" in ok("db", "current", "-d", database_url)
    with open_store(database_url, auto_migrate=False) as store:  # initialised again
        assert store.contexts.add("src/app.py", APP_PY, source_type="file").version == 1


# --- Troubleshooting: "database locked" -------------------------------------------------


def test_concurrent_writers_are_not_refused(database_url: str) -> None:
    """ "Database locked (SQLite)": concurrent writers wait their turn instead of failing;
    the guide's ``?timeout=30`` is accepted in the URL."""
    url = database_url + "?timeout=30" if database_url.startswith("sqlite") else database_url
    with open_store(url) as store:
        chat = store.conversations.create(task="concurrency")
        counter = iter(range(10_000))

        def work() -> None:
            for _ in range(5):
                i = next(counter)
                store.contexts.add(f"src/f{i}.py", f"v = {i}\n", source_type="file")
                store.messages.append(chat.id, role="user", content=f"message {i}")

        assert run_in_threads(work, 8) == []
        positions = [m.position for m in page_all(store.messages.list, conversation_id=chat.id)]
        assert positions == list(range(1, 41))
        assert len(page_all(store.contexts.list, limit=100)) == 40


# --- Moving in: its own rows, with their ids and timestamps --------------------------------

CONTEXTPILOT_SCHEMA = """
CREATE TABLE context_units (id TEXT PRIMARY KEY, source_type TEXT, name TEXT, content TEXT,
    metadata JSON, embedding JSON, created_at DATETIME, updated_at DATETIME,
    superseded_by TEXT);
CREATE TABLE conversations (id TEXT PRIMARY KEY, task TEXT, provider TEXT, model TEXT,
    created_at DATETIME);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT,
    role TEXT, content TEXT, timestamp DATETIME, tokens INTEGER, finish_reason TEXT);
INSERT INTO context_units VALUES
    ('cu-1', 'file', 'app.py', 'print(1)', '{"lang": "py"}', '[0.1, 0.2]',
     '2024-01-01 10:00:00', '2024-01-01 10:00:00', 'cu-2'),
    ('cu-2', 'file', 'app.py', 'print(2)', '{"lang": "py"}', NULL,
     '2024-01-02 10:00:00', '2024-01-02 11:00:00', 'cu-3'),
    ('cu-3', 'file', 'main.py', 'print(3)', '{"lang": "py"}', NULL,
     '2024-01-05 10:00:00', '2024-01-05 10:00:00', NULL),
    ('cu-4', 'code_symbol', 'main.py::run', 'def run(): ...', '{}', NULL,
     '2024-01-05 10:00:00', '2024-01-05 10:00:00', NULL);
INSERT INTO conversations VALUES
    ('conv-a', 'Fix the build', 'openai', 'gpt-4o', '2024-01-03 09:00:00'),
    ('conv-b', 'Rename app.py', 'anthropic', 'claude-sonnet-4', '2024-01-04 09:00:00');
INSERT INTO messages (conversation_id, role, content, timestamp, tokens, finish_reason) VALUES
    ('conv-a', 'system', 'You are a build doctor.', '2024-01-03 09:00:00', NULL, NULL),
    ('conv-b', 'user', 'Rename app.py to main.py', '2024-01-04 09:00:01', 7, NULL),
    ('conv-a', 'user', 'The build fails with E4471', '2024-01-03 09:00:01', 6, NULL),
    ('conv-a', 'assistant', 'Pin the compiler', '2024-01-03 09:00:09', 5, 'stop'),
    ('conv-b', 'assistant', 'Done: main.py supersedes app.py', '2024-01-04 09:00:05', 8,
     'stop');
"""


def contextpilot_rows(db: sqlite3.Connection) -> Iterator[dict[str, object]]:
    """Its tables as rows of ``ctxbase import --format rows`` (docs/moving-in.md)."""
    replaced = dict(
        db.execute("SELECT superseded_by, id FROM context_units WHERE superseded_by IS NOT NULL")
    )
    for id_, kind, name, content, meta, created, updated in db.execute(
        "SELECT id, source_type, name, content, metadata, created_at, updated_at"
        " FROM context_units ORDER BY created_at, id"
    ):
        row = {
            "kind": "context",
            "id": id_,
            "source_type": kind,
            "name": name,
            "content": content,
            "metadata": json.loads(meta or "{}"),
            "created_at": created,
            "updated_at": updated,
        }
        if id_ in replaced:
            row["supersedes"] = replaced[id_]
        yield row
    for id_, task, provider, model, created in db.execute(
        "SELECT id, task, provider, model, created_at FROM conversations"
    ):
        yield {
            "kind": "conversation",
            "id": id_,
            "task": task,
            "provider": provider,
            "model": model,
            "created_at": created,
        }
    for id_, chat, role, content, at, tokens, finish in db.execute(
        "SELECT id, conversation_id, role, content, timestamp, tokens, finish_reason"
        " FROM messages ORDER BY id"
    ):
        counted = "output_tokens" if role == "assistant" else "input_tokens"
        yield {
            "kind": "message",
            "id": id_,
            "conversation_id": chat,
            "role": role,
            "content": content,
            "created_at": at,
            "finish_reason": finish,
            counted: tokens or 0,
        }


def test_moving_in_keeps_ids_timestamps_and_links(database_url: str, tmp_path: Path) -> None:
    """Its SQLite file's rows come over with ``ctxbase import --format rows``: text and
    integer ids mapped stably (and written to a map file), timestamps kept, the
    ``superseded_by`` chain (a rename included) and the message order kept."""
    source = sqlite3.connect(tmp_path / "contextpilot.db")
    source.executescript(CONTEXTPILOT_SCHEMA)
    rows_file, map_file = tmp_path / "contextpilot.jsonl", tmp_path / "ids.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in contextpilot_rows(source)))
    source.close()
    # One broken link (a message of a conversation that is not there): nothing is written.
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        rows_file.read_text()
        + json.dumps(
            {
                "kind": "message",
                "id": 99,
                "conversation_id": "conv-z",
                "role": "user",
                "content": "lost",
            }
        )
        + "\n"
    )
    ok("db", "upgrade", "-d", database_url)
    result = cli("import", "--format", "rows", str(broken), "--quiet", "-d", database_url)
    assert result.exit_code == 1 and "conv-z" in str(result.exception)
    assert table_rows(database_url)["context_units"] == 0

    ok(
        "import",
        "--format",
        "rows",
        str(rows_file),
        "--map-file",
        str(map_file),
        "--quiet",
        "-d",
        database_url,
    )
    mapping = {
        (m["kind"], str(m["original"])): m["id"]
        for m in map(json.loads, map_file.read_text().splitlines())
    }
    assert mapping[("message", "3")] == str(mapped_id("message", 3))
    assert mapping[("context", "cu-1")] == str(mapped_id("context", "cu-1"))

    with open_store(database_url) as store:
        units = {u.id: u for u in store.contexts.versions(mapped_id("context", "cu-1"))}
        first, second, renamed = (units[mapped_id("context", i)] for i in ("cu-1", "cu-2", "cu-3"))
        assert [(u.name, u.version) for u in (first, second, renamed)] == [
            ("app.py", 1),
            ("app.py", 2),
            ("main.py", 3),
        ]
        assert first.superseded_by == second.id and second.superseded_by == renamed.id
        assert first.created_at == datetime(2024, 1, 1, 10, tzinfo=UTC)
        assert second.updated_at == datetime(2024, 1, 2, 11, tzinfo=UTC)
        assert store.contexts.get_latest("main.py").id == renamed.id
        assert first.metadata == {"lang": "py"}

        chat = store.conversations.get(mapped_id("conversation", "conv-a"))
        assert (chat.task, chat.provider, chat.model) == ("Fix the build", "openai", "gpt-4o")
        assert chat.created_at == datetime(2024, 1, 3, 9, tzinfo=UTC)
        assert (chat.message_count, chat.input_tokens, chat.output_tokens) == (3, 6, 5)
        messages = store.messages.list(chat.id).items
        assert [(m.position, m.id) for m in messages] == [
            (1, mapped_id("message", 1)),
            (2, mapped_id("message", 3)),
            (3, mapped_id("message", 4)),
        ]
        assert messages[2].created_at == datetime(2024, 1, 3, 9, 0, 9, tzinfo=UTC)
        assert messages[2].finish_reason == "stop"
        hit = store.search("E4471", kinds=["message"]).hits[0]  # indexed and embedded
        assert hit.id == mapped_id("message", 3)
        assert store.embeddings.pending() == {"message": 0, "context": 0, "memory": 0}
