"""Stores holding every kind of record, and a table-by-table comparison of two databases."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, select

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
    store.projects.create("second", name="Second project")
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
            f"notes {project}", "first version", source_type="note", project=project
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
    _fill_core_tables(store)


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
                    "metadata": {},
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
                "needs": ["billing"],
                "event_types": ["task.done"],
                "threshold": 0.6,
                "delivery": "webhook",
                "target": "https://example.com/hook",
                "secret_encrypted": b"\x00\x01token",
                "cursor": 1,
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


def assert_same_data(left_url: str, right_url: str, tables: list[str] | None = None) -> None:
    with Database(left_url) as left, Database(right_url) as right:
        for name in tables or data_tables():
            assert table_rows(left, name) == table_rows(right, name), f"{name} differs"
