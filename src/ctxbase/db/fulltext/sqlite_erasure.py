"""Erasing deleted text from SQLite's FTS5 indexes.

FTS5 does not remove a deleted row's words from its index: the delete is recorded as a
tombstone in a newer segment, and the words stay readable in ``<table>_fts_data`` (and in
any backup) until a merge rewrites the segment holding them. Nothing deleted may linger,
so each searchable table's delete trigger notes the table in :data:`PENDING_TABLE`
(revision 0008), and before a write transaction commits, :func:`erase_deleted_text`
erases what it deleted:

- with SQLite 3.42 or newer, FTS5's ``secure-delete`` option removes a row's words in
  place as it is deleted; the first commit that finds it off turns it on (a database
  made by an older library) and merges the index once to drop what earlier deletes left;
- with an older SQLite (Debian 12 has 3.40), the index is merged into one segment
  (``optimize``), which drops every deleted entry. That rewrites the table's whole
  index: about 0.1 s at 10k texts and 1 s at 100k on two cores, once per transaction
  that deletes (however many rows it deletes), under the write lock.

Edits are not erased at once: an edited message's or memory's earlier text stays in its
history until the item itself is deleted, which erases both.
"""

from __future__ import annotations

import sqlite3
from typing import Any

#: Tables whose FTS5 index (``<name>_fts``) mirrors their ``content`` column.
SEARCHABLE = ("messages", "context_units", "memories")
#: Searchable tables deleted from in the open transaction (one row per table).
PENDING_TABLE = "pending_fts_purges"
#: FTS5 erases deleted rows in place when asked (``secure-delete``) from this version.
SECURE_DELETE_VERSION = (3, 42, 0)


def secure_delete_supported() -> bool:
    """The linked SQLite's FTS5 can erase deleted rows in place."""
    return sqlite3.sqlite_version_info >= SECURE_DELETE_VERSION


def erase_deleted_text(cursor: Any) -> None:
    """Erase from the FTS5 indexes the words of rows deleted in the open transaction.

    ``cursor`` is a driver cursor inside a write transaction about to commit. Costs one
    small read when nothing was deleted; does nothing before revision 0008 exists.
    """
    try:
        pending = [name for (name,) in cursor.execute(f"SELECT name FROM {PENDING_TABLE}")]
    except sqlite3.OperationalError:  # no such table: the schema is older than 0008
        return
    if not pending:
        return
    for name in pending:
        if name in SEARCHABLE:  # never splice anything else into SQL
            erase_from_index(cursor, f"{name}_fts")
    cursor.execute(f"DELETE FROM {PENDING_TABLE}")


def erase_from_index(cursor: Any, fts: str) -> None:
    """Leave no deleted row's words in the FTS5 table ``fts``."""
    if secure_delete_supported():
        if _secure_delete_on(cursor, fts):
            return  # deletes already erased their words in place
        cursor.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('secure-delete', 1)")
    cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('optimize')")


def _secure_delete_on(cursor: Any, fts: str) -> bool:
    row = cursor.execute(f"SELECT v FROM {fts}_config WHERE k = 'secure-delete'").fetchone()
    return row is not None and bool(row[0])
