"""Backup and restore.

- SQLite: SQLite's online backup API, which copies a consistent snapshot while other
  connections keep writing (WAL readers never block writers). The backup is an SQLite file.
- PostgreSQL: ``pg_dump`` in its custom format when a ``pg_dump`` at least as new as the
  server is found (on ``PATH`` or in the ``pg_bin_dir`` setting), restored by
  ``pg_restore``; otherwise a ctxbase export archive with embeddings, and the report says so.

Restoring replaces the database's contents with the backup's. The kind of a backup is read
from its first bytes, so ``restore`` needs no flag. Passwords reach ``pg_dump`` through its
environment, never its command line.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text

from ctxbase.config import Settings
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.urls import mask_url
from ctxbase.errors import DatabaseError, InvalidInputError
from ctxbase.transfer.archive import export_archive, import_archive

Method = Literal["sqlite-backup", "pg_dump", "export"]
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
GZIP_MAGIC = b"\x1f\x8b"


class BackupReport(BaseModel):
    path: str
    method: Method
    bytes: int
    note: str | None = None


def backup(db: Database, path: str | Path, *, settings: Settings | None = None) -> BackupReport:
    """Write a backup of ``db`` to ``path``."""
    settings = settings or db.settings
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    note = None
    if db.backend == "sqlite":
        _sqlite_backup(db, partial)
        method: Method = "sqlite-backup"
    else:
        tool, reason = find_pg_tool("pg_dump", db, settings)
        if tool is not None:
            _run(tool, ["--format=custom", "--no-owner", f"--file={partial}"], db)
            method = "pg_dump"
        else:
            export_archive(db, partial, with_embeddings=True)
            method, note = "export", f"{reason}; wrote a ctxbase export archive instead"
    partial.replace(target)
    return BackupReport(path=str(target), method=method, bytes=target.stat().st_size, note=note)


def restore(db: Database, path: str | Path, *, settings: Settings | None = None) -> BackupReport:
    """Replace the contents of ``db`` with the backup at ``path``."""
    settings = settings or db.settings
    source = Path(path)
    if not source.is_file():
        raise InvalidInputError(f"No such backup file: {source}")
    with source.open("rb") as file:
        magic = file.read(16)
    if magic.startswith(SQLITE_MAGIC):
        if db.backend != "sqlite":
            raise InvalidInputError(
                "An SQLite backup restores into SQLite only",
                hint=f"copy it into PostgreSQL with `ctxbase migrate --from sqlite:///{source}`",
            )
        _sqlite_restore(source, db)
        method: Method = "sqlite-backup"
    elif magic.startswith(PG_DUMP_MAGIC):
        if db.backend != "postgresql":
            raise InvalidInputError("A pg_dump backup restores into PostgreSQL only")
        tool, reason = find_pg_tool("pg_restore", db, settings)
        if tool is None:
            raise InvalidInputError(f"Cannot restore a pg_dump backup: {reason}")
        _reset(db)
        _run(tool, ["--no-owner", "--single-transaction", str(source)], db, dbname_flag=True)
        method = "pg_dump"
    elif magic.startswith(GZIP_MAGIC):
        _reset(db)
        import_archive(db, source)
        method = "export"
    else:
        raise InvalidInputError(f"{source} is not a ctxbase backup (SQLite, pg_dump or archive)")
    migrate.detect_vector_storage(db)
    return BackupReport(path=str(source), method=method, bytes=source.stat().st_size)


# --- SQLite ------------------------------------------------------------------------------


def _sqlite_backup(db: Database, target: Path) -> None:
    destination = sqlite3.connect(target)
    try:
        with db.translated_errors():
            raw = db.engine.raw_connection()
            try:
                source = raw.driver_connection
                assert isinstance(source, sqlite3.Connection)
                source.backup(destination)  # one step: a single consistent snapshot
            finally:
                raw.close()
    finally:
        destination.close()


def _sqlite_restore(source: Path, db: Database) -> None:
    origin = sqlite3.connect(source)
    try:
        with db.translated_errors():
            raw = db.engine.raw_connection()
            try:
                destination = raw.driver_connection
                assert isinstance(destination, sqlite3.Connection)
                origin.backup(destination)
            finally:
                raw.close()
    finally:
        origin.close()
    db.engine.dispose()  # pooled connections may hold the old schema in their caches


# --- PostgreSQL --------------------------------------------------------------------------


def find_pg_tool(name: str, db: Database, settings: Settings) -> tuple[str | None, str]:
    """A ``pg_dump``/``pg_restore`` able to handle the server, or None and why not."""
    candidates = []
    if settings.pg_bin_dir:
        candidates.append(str(Path(settings.pg_bin_dir) / name))
    found = shutil.which(name)
    if found:
        candidates.append(found)
    with db.connect() as connection:
        server = int(connection.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    for candidate in candidates:
        version = _tool_major(candidate)
        if version is not None and version >= server:
            return candidate, ""
    if not candidates:
        return None, f"{name} was not found (set CTXBASE_PG_BIN_DIR)"
    return None, f"no {name} of version {server} or newer was found (set CTXBASE_PG_BIN_DIR)"


def _tool_major(path: str) -> int | None:
    try:
        output = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    return int(match.group(1)) if match else None


def _run(tool: str, args: list[str], db: Database, *, dbname_flag: bool = False) -> None:
    url = db.url.url
    env = {**os.environ, "PGAPPNAME": "ctxbase"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    connection = [f"--username={url.username}"] if url.username else []
    host = url.host or url.query.get("host")
    if host:
        connection.append(f"--host={host}")
    if url.port:
        connection.append(f"--port={url.port}")
    target = f"--dbname={url.database}" if dbname_flag else str(url.database)
    finished = subprocess.run(
        [tool, *connection, *args, target], capture_output=True, text=True, env=env
    )
    if finished.returncode != 0:
        message = mask_url(finished.stderr.strip().splitlines()[-1] if finished.stderr else "")
        raise DatabaseError(f"{Path(tool).name} failed: {message}")


def _reset(db: Database) -> None:
    """Empty the database of ctxbase's tables, ready to take a backup's."""
    migrate.downgrade(db, "base")
    if db.backend == "postgresql":
        with db.connect(write=True) as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {migrate.VERSION_TABLE}"))
