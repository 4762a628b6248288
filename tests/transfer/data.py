"""Stores holding every kind of record, and a table-by-table comparison of two databases."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Connection, insert, select

import ctxbase
from ctxbase import transfer
from ctxbase.config import Settings
from ctxbase.db.database import Database
from ctxbase.db.migrate import detect_vector_storage
from ctxbase.db.schema import (
    ApiKey,
    DatabaseConfig,
    Event,
    EventStream,
    LangGraphCheckpoint,
    LangGraphItemMemory,
    LangGraphItemTTL,
    LangGraphWrite,
    Memory,
    StateEntry,
    Subscription,
    metadata,
    new_id,
    table,
)
from ctxbase.transfer.jobs import ProgressCallback
from ctxbase.transfer.report import MigrationReport
from ctxbase.transfer.tables import data_tables


@contextmanager
def target_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty migration target: an SQLite file, or a fresh PostgreSQL database."""
    if kind == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'target.db'}"
        return
    server = request.getfixturevalue("postgres")
    with server.database() as url:
        yield url


def cancel_after(table: str, rows: int) -> tuple[threading.Event, ProgressCallback]:
    """A cancel event, and a progress callback that sets it once ``table`` has ``rows``."""
    cancel = threading.Event()

    def on_progress(report: MigrationReport) -> None:
        if report.progress.rows.get(table, 0) >= rows:
            cancel.set()

    return cancel, on_progress


def cancel_first_run(monkeypatch: pytest.MonkeyPatch, table: str, rows: int) -> None:
    """The next migration run is cancelled once ``table`` has ``rows`` copied, as a person
    pressing Cancel then would (through the job's own cancel event); later runs, such as
    its resume, go on undisturbed."""
    run = transfer.PreparedMigration.run
    first = [True]

    def cancelling(self: transfer.PreparedMigration) -> MigrationReport:
        if first:
            first.clear()
            migration, reported = self.migration, self.migration.on_progress

            def on_progress(report: MigrationReport) -> None:
                if report.progress.rows.get(table, 0) >= rows:
                    migration.cancel.set()
                if reported is not None:
                    reported(report)

            migration.on_progress = on_progress
        return run(self)

    monkeypatch.setattr(transfer.PreparedMigration, "run", cancelling)


def settings() -> Settings:
    """Settings for library calls: the test run's secret key, never a key file."""
    return Settings.from_values(secret_key=os.environ["CTXBASE_SECRET_KEY"])


def fill(store: ctxbase.Store, *, conversations: int = 3, messages: int = 5) -> None:
    """Write every kind of record through the store, and the rest through Core."""
    store.projects.create("second", name="Second project", settings={"color": "teal"})
    for project in ("default", "second"):
        for c in range(conversations):
            chat = store.conversations.create(
                project=project,
                title=f"chat {c} ✓",
                metadata={"n": c, "f": 1.5, "deep": {"b": [1, 2]}},
            )
            store.messages.append_many(
                chat.id,
                [
                    {
                        "role": "user" if i % 2 else "assistant",
                        "content": f"message {i} of {c}",
                        "input_tokens": i,
                        "metadata": {"i": i},
                    }
                    for i in range(messages)
                ],
                project=project,
            )
        first = store.contexts.add(
            f"notes {project}",
            "first version",
            source_type="note",
            metadata={"path": "notes.md"},
            project=project,
        )
        store.contexts.add(first.name, "second version", source_type="note", project=project)
        memory = store.memories.add(
            "the user prefers tea",
            project=project,
            importance=0.8,
            metadata={"k": "v"},
            memory_type="fact",
        )
        store.memories.update(memory.id, content="the user prefers green tea", project=project)
        store.memories.add("expires later", project=project, ttl_seconds=3600)
        store.state.put(
            "plan", {"steps": [1, 2, 3], "ratio": 0.25}, namespace="agent/a", project=project
        )
        store.state.put("counter", 7, namespace="agent/b", project=project)
        _fill_reviewed_conversation(store, project)
    _fill_administration(store)
    _fill_core_tables(store)


def _fill_reviewed_conversation(store: ctxbase.Store, project: str) -> None:
    """A conversation with every optional field: an edited message (its history, its
    ``updated_at``), quality records of each kind, a health score, and memories and state
    it owns or that came from it."""
    chat = store.conversations.create(
        project=project,
        title="reviewed",
        task="explain the invoice drift",
        agent_id="billing-agent",
        provider="openai",
        model="gpt-x",
        provider_config={"temperature": 0.2},
        metadata={"reviewed": True},
    )
    first, second, third = store.messages.append_many(
        chat.id,
        [
            {"role": "user", "content": "Why does the total drift?", "input_tokens": 9},
            {
                "role": "assistant",
                "content": "Rounding per line.",
                "thinking": "lines are rounded before summing",
                "output_tokens": 4,
                "finish_reason": "stop",
            },
            {"role": "assistant", "content": "Rounding per invoice, see doc:7."},
        ],
        project=project,
    )
    store.messages.update(
        second.id,
        content="Rounding per line, then per invoice.",
        metadata={"edited": 1},
        actor="reviewer",
        project=project,
    )
    quality = store.quality
    quality.add_metric(chat.id, metric="coherence", value=0.5, details={"n": 3}, project=project)
    contradiction = quality.add_contradiction(
        chat.id,
        first_message_id=second.id,
        second_message_id=third.id,
        description="line or invoice",
        details={"why": "rounding"},
        project=project,
    )
    quality.update_contradiction(chat.id, contradiction.id, status="resolved", project=project)
    quality.add_loop(
        chat.id,
        pattern="rounding",
        message_ids=[second.id, third.id],
        details={"k": 1},
        project=project,
    )
    citation = quality.add_citation(
        chat.id,
        message_id=third.id,
        source_reference="doc:7",
        quoted_text="per invoice",
        project=project,
    )
    quality.update_citation(chat.id, citation.id, status="verified", note="found", project=project)
    quality.compute_health(chat.id, weights={"coherence": 1}, save=True, project=project)
    learned = store.memories.add(
        "totals are rounded per invoice",
        agent_id="billing-agent",
        user_id="u-1",
        conversation_id=chat.id,
        first_message_id=first.id,
        actor="reviewer",
        project=project,
    )
    store.memories.get(learned.id, project=project)  # an access: last_accessed_at
    store.memories.add(
        "scratch note of the review",
        owner_conversation_id=chat.id,
        ttl_seconds=7200,
        project=project,
    )
    store.state.put(
        "draft",
        {"step": 2},
        namespace="review",
        owner_conversation_id=chat.id,
        ttl_seconds=7200,
        project=project,
    )
    store.subscriptions.create(
        agent_id="billing-agent", name="digest", event_types=["task.*"], project=project
    )


def _fill_administration(store: ctxbase.Store) -> None:
    """A second tenant with settings and quota keys of its own, and keys limited to
    projects and scopes (one used, one revoked): the audit log records each."""
    store.tenants.create(
        "acme",
        name="Acme",
        plan="team",
        quotas={"projects": 3, "agents": 25, "tier": "gold"},
        settings={"region": "eu"},
    )
    store.tenants.update("acme", settings={"region": "eu", "features": {"beta": True}})
    scoped = store.keys.create(
        role="writer",
        name="scoped",
        projects=["second"],
        scopes=["memories:read", "events:*"],
        expires_in_days=30,
    )
    store.keys.touch(scoped.key_id, datetime.now(UTC))
    revoked = store.keys.create(role="reader", name="old")
    store.keys.revoke(revoked.key_id)


def _fill_core_tables(store: ctxbase.Store) -> None:
    project = store.projects.get("default")
    now = datetime.now(UTC)
    with store.db.connect(write=True) as connection:
        tenant_id = connection.execute(select(metadata.tables["tenants"].c.id)).scalar()
        connection.execute(
            insert(table(ApiKey)),
            {
                "key_id": new_id(),
                "tenant_id": tenant_id,
                "name": "ci",
                "prefix": "cb_abc",
                "key_hash": "f" * 64,
                "role": "writer",
                "scopes": ["read"],
                "projects": ["default"],
                "created_at": now,
                "expires_at": now + timedelta(days=30),
            },
        )
        connection.execute(
            insert(table(EventStream)), {"project_id": project.id, "last_sequence": 2}
        )
        event_ids = [new_id(), new_id()]
        for sequence, event_id in zip((1, 2), event_ids, strict=True):
            connection.execute(
                insert(table(Event)),
                {
                    "id": event_id,
                    "project_id": project.id,
                    "tenant_id": tenant_id,
                    "sequence": sequence,
                    "event_type": "task.done",
                    "data": {"seq": sequence},
                    "metadata": {"source": "ci"} if sequence == 2 else {},
                    "created_at": now,
                },
            )
        subscription_id = new_id()
        connection.execute(
            insert(table(Subscription)),
            {
                "id": subscription_id,
                "project_id": project.id,
                "agent_id": "a1",
                "name": "hook",
                "needs": ["billing"],
                "event_types": ["task.done"],
                "threshold": 0.6,
                "delivery": "webhook",
                "target": "https://example.com/hook",
                "secret_encrypted": b"\x00\x01token",
                "cursor": 1,
                "attempts": 2,
                "next_attempt_at": now + timedelta(minutes=1),
                "last_error": "HTTP 503 from the receiver",
                "lease_owner": "worker-1",
                "lease_expires_at": now + timedelta(seconds=30),
                "created_at": now,
                "updated_at": now,
            },
        )
        connection.execute(
            insert(metadata.tables["dead_letters"]),
            {
                "id": new_id(),
                "subscription_id": subscription_id,
                "event_id": event_ids[1],
                "sequence": 2,
                "attempts": 8,
                "last_error": "HTTP 500 from the receiver",
                "created_at": now,
            },
        )
        connection.execute(
            insert(table(DatabaseConfig)),
            {
                "id": new_id(),
                "name": "spare",
                "description": "",
                "kind": "sqlite",
                "sqlite_path": "/tmp/spare.db",
                "status": "configured",
                "is_active": False,
                "pgvector_enabled": False,
                "created_at": now,
                "updated_at": now,
            },
        )
        _fill_langgraph_tables(connection, project.id)


def _fill_langgraph_tables(connection: Connection, project_id: uuid.UUID) -> None:
    """Checkpoints and a pending write in the root namespace and a subgraph's, and a
    store item (a state entry) with a time to live and an indexed field (a memory), as
    the LangGraph adapters write them."""
    for n, namespace in enumerate(("", "review:1")):
        thread = {"project_id": project_id, "thread_id": "thread-1", "checkpoint_ns": namespace}
        connection.execute(
            insert(table(LangGraphCheckpoint)),
            [
                {
                    **thread,
                    "id": new_id(),
                    "checkpoint_id": f"{step:04}",
                    "parent_checkpoint_id": f"{step - 1:04}" if step > 1 else None,
                    "run_id": "run-1" if step > 1 else None,
                    "checkpoint_type": "msgpack",
                    "checkpoint": bytes([0x81, n, step]),
                    "metadata": {"step": step, "source": "loop"},
                }
                for step in (1, 2)
            ],
        )
        connection.execute(
            insert(table(LangGraphWrite)),
            {
                **thread,
                "id": new_id(),
                "checkpoint_id": "0002",
                "task_id": "task-1",
                "task_path": "~__pregel_pull, write",
                "idx": n,
                "channel": "text",
                "value_type": "json",
                "value": b'"draft"',
            },
        )
    now = datetime.now(UTC)
    entry_id, memory_id = new_id(), new_id()
    connection.execute(
        insert(table(StateEntry)),
        {
            "id": entry_id,
            "project_id": project_id,
            "namespace": "langgraph/posts",
            "key": "draft",
            "value": {"text": "A post about tea"},
            "version": 1,
            "expires_at": now + timedelta(minutes=10),
            "created_at": now,
            "updated_at": now,
        },
    )
    connection.execute(
        insert(table(Memory)),
        {
            "id": memory_id,
            "project_id": project_id,
            "content": "A post about tea",
            "memory_type": "semantic",
            "importance": 0.5,
            "metadata": {},
            "access_count": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    connection.execute(
        insert(table(LangGraphItemTTL)),
        {"state_entry_id": entry_id, "project_id": project_id, "ttl_minutes": 10.0},
    )
    connection.execute(
        insert(table(LangGraphItemMemory)),
        {
            "memory_id": memory_id,
            "project_id": project_id,
            "state_entry_id": entry_id,
            "field": "text",
        },
    )


def table_rows(db: Database, name: str) -> list[dict[str, Any]]:
    """Every row of a table in key order, vectors as bytes so rows compare with ==."""
    detect_vector_storage(db)
    t = metadata.tables[name]
    with db.connect() as connection:
        rows = connection.execute(select(t).order_by(*t.primary_key.columns)).mappings().all()
    return [
        {k: v.astype("<f4").tobytes() if isinstance(v, np.ndarray) else v for k, v in row.items()}
        for row in rows
    ]


#: Tables of :func:`data_tables` that ``fill`` leaves empty, each with the reason. None:
#: a copy that forgot a table could not be noticed on an empty one. (``migration_jobs``
#: is never copied and ``database_configs`` only when chosen: neither is a data table.)
EMPTY_TABLES: dict[str, str] = {}
#: Columns ``fill`` leaves empty (None, "", {}, [] or b"") in every row, each with the
#: reason. None: a copy that dropped a column's values could not be noticed otherwise.
EMPTY_COLUMNS: dict[str, str] = {}
_EMPTY_VALUES: tuple[object, ...] = (None, "", {}, [], b"")


def assert_fills_every_column(db: Database) -> None:
    """Every data table holds a row and every column a value (neither None nor an empty
    string, object, list or bytes) in some row, but for :data:`EMPTY_TABLES` and
    :data:`EMPTY_COLUMNS`; and an edited message has its own ``updated_at``."""
    assert set(EMPTY_TABLES) <= set(data_tables()), "EMPTY_TABLES names no data table"
    for name in data_tables():
        rows = table_rows(db, name)
        if name in EMPTY_TABLES:
            continue
        assert rows, f"fill writes no row in {name}"
        for column in metadata.tables[name].columns:
            if f"{name}.{column.name}" not in EMPTY_COLUMNS:
                values = [row[column.name] for row in rows]
                assert any(_filled(v) for v in values), f"fill leaves {name}.{column.name} empty"
    assert any(m["updated_at"] != m["created_at"] for m in table_rows(db, "messages"))


def _filled(value: object) -> bool:
    return not any(type(value) is type(e) and value == e for e in _EMPTY_VALUES)


def assert_same_data(left_url: str, right_url: str, tables: list[str] | None = None) -> None:
    with Database(left_url) as left, Database(right_url) as right:
        for name in tables or data_tables():
            assert table_rows(left, name) == table_rows(right, name), f"{name} differs"
