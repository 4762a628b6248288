"""The database's key generation: a value that changes whenever a key may have stopped
working or changed (a key revoked, a tenant deactivated or given new quotas).

Server processes cache keys (:mod:`ctxbase.server.keycache`) and read the generation on
every request; a new one makes them forget their keys, so such a change takes effect at
once on every process sharing the database. It is one row of ``store_settings``, written
in the transaction that makes the change.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, select, update

from ctxbase.db.schema import StoreSetting, table, utcnow
from ctxbase.store.base import DEFAULT_TENANT, tenants_table

if TYPE_CHECKING:
    from ctxbase.db.database import Database

settings_table = table(StoreSetting)
KEY_GENERATION = "keys.generation"


def bump_key_generation(connection: Connection) -> None:
    """Give the database a new key generation, in the caller's transaction: every process
    caching keys forgets them on its next request once this commits."""
    token = uuid.uuid4().hex
    values = {"value": token, "updated_at": utcnow()}
    s_ = settings_table.c
    changed = connection.execute(update(settings_table).where(s_.key == KEY_GENERATION), values)
    if changed.rowcount:
        return
    # First change ever: the operator tenant's row serialises concurrent first writers
    # (PostgreSQL; SQLite's write transactions are serial already).
    connection.execute(
        select(tenants_table.c.id)
        .where(tenants_table.c.slug == DEFAULT_TENANT)
        .with_for_update(key_share=True)
    )
    changed = connection.execute(update(settings_table).where(s_.key == KEY_GENERATION), values)
    if not changed.rowcount:
        connection.execute(insert(settings_table), {"key": KEY_GENERATION, **values})


def _select_key_generation() -> Any:
    return select(settings_table.c.value).where(settings_table.c.key == bindparam("key"))


def key_generation(db: Database) -> Any:
    """The database's key generation (None until a key is first revoked): one indexed
    point read, prepared, for every request of a server that caches keys."""
    statement = db.prepared("keys.generation", _select_key_generation)
    with db.raw() as cursor:
        row = statement.first(cursor, {"key": KEY_GENERATION})
    return None if row is None else row["value"]
