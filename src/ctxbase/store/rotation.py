"""Rotating the key that encrypts stored secrets.

With a key file, the new key is written *before* the old one in the file, every token is
re-encrypted with it, and only then is the old key dropped: a run interrupted at any
point leaves every token readable, and running again finishes the job. With the key in
``CTXBASE_SECRET_KEY``, the operator lists the new key first and the old one after it;
this re-encrypts every token with the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from ctxbase.db.schema import DatabaseConfig, MigrationJob, Subscription, table
from ctxbase.secrets import Secrets, generate_key, write_key_file

if TYPE_CHECKING:
    from ctxbase.store.store import Store

#: Every column holding a Fernet token, by table.
ENCRYPTED_COLUMNS = {
    table(Subscription): ("secret_encrypted",),
    table(DatabaseConfig): ("password_encrypted",),
    table(MigrationJob): ("source_encrypted", "target_encrypted"),
}


def rotate_secrets(store: Store) -> int:
    """Re-encrypt every stored secret with a new first key; the number re-encrypted."""
    settings = store.settings
    key_file = None
    if settings.secret_key is None:
        key_file = Path(settings.secret_key_file).expanduser()
        old = key_file.read_text().strip() if key_file.exists() else ""
        if old:
            write_key_file(key_file, f"{generate_key()},{old}".encode())
        else:
            write_key_file(key_file, generate_key().encode())
    secrets = Secrets(settings)
    count = 0
    with store.db.connect(write=True) as connection:
        for items, columns in ENCRYPTED_COLUMNS.items():
            key = items.primary_key.columns.values()[0]
            for column in columns:
                rows = connection.execute(
                    select(key, items.c[column]).where(items.c[column].is_not(None))
                ).all()
                for row_id, token in rows:
                    connection.execute(
                        update(items).where(key == row_id).values({column: secrets.rotate(token)})
                    )
                    count += 1
    if key_file is not None:  # every token now reads with the new key alone
        newest = key_file.read_text().split(",")[0].strip()
        write_key_file(key_file, newest.encode())
    store.secrets = Secrets(settings)
    return count
