"""Schema migrations: Alembic driven from code, the same revisions on every backend.

ctxbase has no ``alembic.ini``: each command builds its configuration here and hands
Alembic an open connection. Everything runs in one transaction (PostgreSQL DDL is
transactional, and SQLite's is too), so a failed upgrade leaves the schema as it was.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import Connection, LargeBinary

from ctxbase.db.database import Database
from ctxbase.db.schema import metadata
from ctxbase.db.types import EmbeddingVector
from ctxbase.errors import SchemaError

VERSION_TABLE = "ctxbase_schema_version"
SCRIPT_LOCATION = "ctxbase.db:migrations"
#: Names of vector indexes built per embedding model at run time, not by revisions.
ANN_INDEX_PREFIX = "ix_embeddings_ann_"


@dataclass(frozen=True)
class Revision:
    """One schema revision, as `ctxbase db history` shows it."""

    revision: str
    down_revision: str | None
    message: str
    is_head: bool


def is_managed_elsewhere(name: str | None, type_: str) -> bool:
    """Objects that exist in the database but not in the models, on purpose."""
    if name is None:
        return False
    if type_ == "table":
        return name == VERSION_TABLE or "_fts" in name
    return type_ == "index" and (name.startswith(ANN_INDEX_PREFIX) or name.endswith("_fts"))


def compare_type(
    _context: Any, _inspected_column: Any, _metadata_column: Any, inspected: Any, declared: Any
) -> bool | None:
    """Embedding vectors are ``vector`` with pgvector and bytes without: both match."""
    if isinstance(declared, EmbeddingVector):
        return not isinstance(inspected, LargeBinary | VECTOR)
    return None  # Alembic's own comparison


def include_object(
    _obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any
) -> bool:
    return not is_managed_elsewhere(name, type_)


#: Options shared by migrations and by the schema comparison.
CONTEXT_OPTIONS: dict[str, Any] = {
    "version_table": VERSION_TABLE,
    "compare_type": compare_type,
    "include_object": include_object,
}


#: References SQLite gained through ``ADD COLUMN`` (its tables cannot be rebuilt without
#: moving the rows their full-text indexes point at). SQLite enforces them, but reflects
#: them without their name or ``ON DELETE``, so the comparison leaves them out there.
ADDED_IN_PLACE = frozenset(
    {("memories", "owner_conversation_id"), ("state_entries", "owner_conversation_id")}
)


def _not_added_in_place(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if (
        type_ == "foreign_key_constraint"
        and {(obj.table.name, column.name) for column in obj.columns} <= ADDED_IN_PLACE
    ):
        return False
    return include_object(obj, name, type_, reflected, compare_to)


def schema_differences(db: Database) -> list[Any]:
    """What separates the database's schema from the models; empty when they agree."""
    with db.connect() as connection:
        options = CONTEXT_OPTIONS
        if db.backend.rebuilds_tables_to_alter:
            options = {**options, "include_object": _not_added_in_place}
        context = MigrationContext.configure(connection, opts=options)
        return list(compare_metadata(context, metadata))


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config(None))


def head_revision() -> str:
    head = script_directory().get_current_head()
    assert head is not None
    return head


def history() -> list[Revision]:
    """Every revision, newest first."""
    scripts = script_directory()
    heads = set(scripts.get_heads())
    return [
        Revision(
            revision=s.revision,
            down_revision=s.down_revision if isinstance(s.down_revision, str) else None,
            message=(s.doc or "").strip(),
            is_head=s.revision in heads,
        )
        for s in scripts.walk_revisions()
    ]


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None for a database without ctxbase's schema."""
    with db.connect() as connection:
        return _current(connection)


def pending_revisions(db: Database) -> list[str]:
    """Revisions between the database's current one and head, oldest first."""
    current = current_revision(db)
    scripts = script_directory()
    upper = scripts.iterate_revisions("head", current or "base")
    return [s.revision for s in reversed(list(upper))]


def upgrade(db: Database, revision: str = "head") -> None:
    _run(db, lambda cfg: command.upgrade(cfg, revision))


def downgrade(db: Database, revision: str) -> None:
    _run(db, lambda cfg: command.downgrade(cfg, revision))


def reset(db: Database) -> None:
    """Drop every ctxbase table and build the schema again: all data is lost."""
    downgrade(db, "base")
    upgrade(db, "head")


def ensure_schema(db: Database, *, auto_migrate: bool = True) -> str | None:
    """Bring the database to head when allowed, then remember how it stores vectors."""
    current = current_revision(db)
    if current != head_revision() and auto_migrate:
        upgrade(db)
        current = head_revision()
    detect_vector_storage(db)
    return current


def detect_vector_storage(db: Database) -> str:
    """Record on the engine whether embeddings are pgvector columns or float32 bytes."""
    return db.backend.detect_vector_storage(db)


def _config(connection: Connection | None) -> Config:
    config = Config(stdout=io.StringIO())
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def _current(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _run(db: Database, action: Callable[[Config], None]) -> None:
    with db.backend.migration_connection(db) as connection:
        try:
            action(_config(connection))
        except CommandError as e:
            raise SchemaError(f"Migration failed: {e}") from e
    detect_vector_storage(db)
