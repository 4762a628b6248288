"""Schema migrations on every backend: up, down, up again, and equal to the models."""

from __future__ import annotations

import uuid

from sqlalchemy import inspect, select, text

import ctxbase
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.schema import metadata
from tests.conftest import open_store, run_in_threads


def test_upgrade_downgrade_upgrade_matches_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert migrate.current_revision(db) is None
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
        assert migrate.schema_differences(db) == []

        migrate.downgrade(db, "base")
        assert migrate.current_revision(db) is None
        with db.connect() as connection:
            left = set(inspect(connection).get_table_names()) & set(metadata.tables)
        assert left == set()

        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
        assert migrate.schema_differences(db) == []
        assert migrate.pending_revisions(db) == []
    finally:
        db.dispose()


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    db = Database(database_url)
    try:
        migrate.upgrade(db)
        migrate.upgrade(db)
        assert migrate.schema_differences(db) == []
    finally:
        db.dispose()


def test_step_by_step_upgrade_keeps_data(database_url: str) -> None:
    """Walk every revision from base to head; rows written on the way survive each step."""
    db = Database(database_url)
    revisions = [r.revision for r in reversed(migrate.history())]
    written: list[uuid.UUID] = []
    try:
        for revision in revisions:
            migrate.upgrade(db, revision)
            tenant_id = uuid.uuid4()
            with db.connect(write=True) as connection:
                connection.execute(
                    metadata.tables["tenants"]
                    .insert()
                    .values(
                        id=tenant_id,
                        slug=f"t-{revision}",
                        name=revision,
                        plan="free",
                        quotas={},
                        settings={},
                        is_active=True,
                        created_at=_now(),
                        updated_at=_now(),
                    )
                )
            written.append(tenant_id)
        with db.connect() as connection:
            kept = set(connection.execute(text("SELECT id FROM tenants")).scalars())
        assert len(kept) == len(written)
    finally:
        db.dispose()


def test_reset_empties_every_table(store: ctxbase.Store) -> None:
    with store.db.connect(write=True) as connection:
        connection.execute(
            metadata.tables["tenants"]
            .insert()
            .values(
                id=uuid.uuid4(),
                slug="gone",
                name="gone",
                plan="free",
                quotas={},
                settings={},
                is_active=True,
                created_at=_now(),
                updated_at=_now(),
            )
        )
    migrate.reset(store.db)
    with store.db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM tenants")).scalar() == 0
    assert migrate.current_revision(store.db) == migrate.head_revision()


def test_open_migrates_unless_told_not_to(database_url: str) -> None:
    with open_store(database_url, auto_migrate=False) as store:
        assert migrate.current_revision(store.db) is None
        assert store.check_connection().pending_migrations == [
            r.revision for r in reversed(migrate.history())
        ]
    if database_url == "sqlite://":
        return  # an in-memory database does not outlive its store
    with open_store(database_url) as store:
        assert store.schema_revision == migrate.head_revision()
        report = store.check_connection()
    assert report.pending_migrations == []
    # without pgvector the database is usable, reported degraded for that alone
    assert report.status == "ok" or [p.code for p in report.problems] == ["pgvector_missing"]


def test_concurrent_first_opens_do_not_collide(persistent_database_url: str) -> None:
    def open_once() -> None:
        with open_store(persistent_database_url) as store:
            assert store.schema_revision == migrate.head_revision()

    assert run_in_threads(open_once, 4) == []


def test_sqlite_foreign_keys_are_back_on_after_a_migration(tmp_path) -> None:
    for url in ("sqlite://", f"sqlite:///{tmp_path / 'fk.db'}"):
        db = Database(url)
        migrate.upgrade(db)
        migrate.downgrade(db, "base")
        migrate.upgrade(db)
        with db.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        db.dispose()


def _now():
    from ctxbase.db.schema import utcnow

    return utcnow()


def test_token_totals_revision_keeps_and_backfills_data(database_url: str) -> None:
    """0002 rebuilds `conversations` on SQLite: its messages must survive both ways."""
    db = Database(database_url)
    tables = metadata.tables
    try:
        migrate.upgrade(db, "0001")
        ids = {name: uuid.uuid4() for name in ("tenant", "project", "conversation")}
        now = _now()
        with db.connect(write=True) as connection:
            connection.execute(
                text(
                    "INSERT INTO tenants (id, slug, name, plan, quotas, settings, is_active,"
                    " created_at, updated_at) VALUES (:id, 't', 't', 'free', '{}', '{}', :yes,"
                    " :now, :now)"
                ),
                {"id": _uuid(db, ids["tenant"]), "now": now, "yes": True},
            )
            connection.execute(
                text(
                    "INSERT INTO projects (id, tenant_id, slug, name, settings, created_at,"
                    " updated_at) VALUES (:id, :tenant, 'p', 'p', '{}', :now, :now)"
                ),
                {"id": _uuid(db, ids["project"]), "tenant": _uuid(db, ids["tenant"]), "now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO conversations (id, project_id, provider_config, metadata,"
                    " message_count, created_at, updated_at)"
                    " VALUES (:id, :project, '{}', '{}', 2, :now, :now)"
                ),
                {
                    "id": _uuid(db, ids["conversation"]),
                    "project": _uuid(db, ids["project"]),
                    "now": now,
                },
            )
            for position, (tokens_in, tokens_out) in enumerate([(10, 1), (5, 7)], start=1):
                connection.execute(
                    text(
                        "INSERT INTO messages (id, project_id, conversation_id, position, role,"
                        " content, input_tokens, output_tokens, metadata, created_at) VALUES"
                        " (:id, :project, :conversation, :position, 'user', 'hi', :i, :o,"
                        " '{}', :now)"
                    ),
                    {
                        "id": _uuid(db, uuid.uuid4()),
                        "project": _uuid(db, ids["project"]),
                        "conversation": _uuid(db, ids["conversation"]),
                        "position": position,
                        "i": tokens_in,
                        "o": tokens_out,
                        "now": now,
                    },
                )
        migrate.upgrade(db)
        with db.connect() as connection:
            totals = connection.execute(
                text("SELECT input_tokens, output_tokens FROM conversations")
            ).one()
        assert tuple(totals) == (15, 8)
        migrate.downgrade(db, "0001")
        with db.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM messages")).scalar() == 2
        migrate.upgrade(db)
        with db.connect() as connection:
            assert connection.execute(select(tables["messages"])).fetchall().__len__() == 2
        assert migrate.schema_differences(db) == []
    finally:
        db.dispose()


def _uuid(db: Database, value: uuid.UUID) -> object:
    """A UUID as each backend stores it when written with plain SQL."""
    return value.hex if db.backend_name == "sqlite" else value
