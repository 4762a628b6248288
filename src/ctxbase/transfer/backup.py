"""Backup and restore.

- SQLite: SQLite's online backup API, which copies a consistent snapshot while other
  connections keep writing (WAL readers never block writers). The backup is an SQLite file.
- PostgreSQL: ``pg_dump`` in its custom format when a ``pg_dump`` at least as new as the
  server is found (on ``PATH`` or in the ``pg_bin_dir`` setting), restored by
  ``pg_restore``; otherwise a ctxbase export archive with embeddings, and the report says so.

Restoring replaces the database's contents with the backup's, and only once the backup
is known whole: a damaged backup leaves the database as it was. Each kind is first read
through (SQLite's integrity check; ``pg_restore`` into nowhere; every line of an archive),
then swapped in as one step: SQLite's backup API copies every page in one write
transaction of the database; ``pg_restore --clean --single-transaction`` drops and
recreates the tables in one transaction; an archive is imported in the transaction that
empties the tables. The kind of a backup is read from its first bytes, so ``restore``
needs no flag. Passwords reach ``pg_dump`` through its environment, never its command line.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import inspect, text

from ctxbase.config import Settings
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.schema import metadata
from ctxbase.db.urls import mask_url
from ctxbase.errors import DatabaseError, InvalidInputError
from ctxbase.transfer.archive import (
    PhaseCallback,
    RowsCallback,
    export_archive,
    replace_with_archive,
    written_through_partial,
)

Method = Literal["sqlite-backup", "pg_dump", "export"]
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
GZIP_MAGIC = b"\x1f\x8b"


class BackupReport(BaseModel):
    path: str
    method: Method
    bytes: int
    note: str | None = None


def backup(
    db: Database,
    path: str | Path,
    *,
    settings: Settings | None = None,
    progress: RowsCallback | None = None,
    on_phase: PhaseCallback | None = None,
) -> BackupReport:
    """Write a backup of ``db`` to ``path`` (through ``<path>.partial``, removed on failure).
    ``progress`` and ``on_phase`` are told how it goes (rows only for an export archive)."""
    settings = settings or db.settings
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInputError(f"Cannot write {target}: {error.strerror or error}") from None
    with written_through_partial(target) as partial:
        method, note = _write_backup(db, partial, settings, progress, on_phase)
    return BackupReport(path=str(target), method=method, bytes=target.stat().st_size, note=note)


def _write_backup(
    db: Database,
    partial: Path,
    settings: Settings,
    progress: RowsCallback | None,
    on_phase: PhaseCallback | None,
) -> tuple[Method, str | None]:
    phase = on_phase or _no_phase
    if db.backend.backup_method == "sqlite-backup":
        phase("backing up", {})
        _sqlite_backup(db, partial)
        return "sqlite-backup", None
    tool, reason = find_pg_tool("pg_dump", db, settings)
    if tool is not None:
        phase("backing up", {})
        _run(tool, ["--format=custom", "--no-owner", f"--file={partial}"], db)
        return "pg_dump", None
    export_archive(db, partial, with_embeddings=True, progress=progress, on_phase=on_phase)
    return "export", f"{reason}; wrote a ctxbase export archive instead"


def restore(
    db: Database,
    path: str | Path,
    *,
    settings: Settings | None = None,
    progress: RowsCallback | None = None,
    on_phase: PhaseCallback | None = None,
) -> BackupReport:
    """Replace the contents of ``db`` with the backup at ``path``. The backup is checked
    whole first; a damaged one raises InvalidInputError and leaves ``db`` untouched.
    ``progress`` and ``on_phase`` as for :func:`backup`."""
    settings = settings or db.settings
    phase = on_phase or _no_phase
    source = Path(path)
    if not source.is_file():
        raise InvalidInputError(f"No such backup file: {source}")
    with source.open("rb") as file:
        magic = file.read(16)
    if not magic:
        raise InvalidInputError(f"{source} is empty: not a ctxbase backup")
    if magic.startswith(SQLITE_MAGIC):
        if db.backend.backup_method != "sqlite-backup":
            raise InvalidInputError(
                "An SQLite backup restores into SQLite only",
                hint=f"copy it into PostgreSQL with `ctxbase migrate --from sqlite:///{source}`",
            )
        phase("checking the backup", {})
        _check_sqlite_backup(source)
        phase("restoring", {})
        _sqlite_restore(source, db)
        method: Method = "sqlite-backup"
    elif magic.startswith(PG_DUMP_MAGIC):
        if db.backend.backup_method != "pg_dump":
            raise InvalidInputError("A pg_dump backup restores into PostgreSQL only")
        tool, reason = find_pg_tool("pg_restore", db, settings)
        if tool is None:
            raise InvalidInputError(f"Cannot restore a pg_dump backup: {reason}")
        phase("checking the backup", {})
        _require_tables_of(db, _check_pg_dump(tool, source), source)
        # --clean drops the tables inside the one transaction that recreates them
        args = ["--no-owner", "--clean", "--if-exists", "--single-transaction", str(source)]
        phase("restoring", {})
        _run(tool, args, db, dbname_flag=True)
        method = "pg_dump"
    elif magic.startswith(GZIP_MAGIC):
        replace_with_archive(db, source, progress=progress, on_phase=on_phase)
        method = "export"
    else:
        raise InvalidInputError(f"{source} is not a ctxbase backup (SQLite, pg_dump or archive)")
    migrate.detect_vector_storage(db)
    return BackupReport(path=str(source), method=method, bytes=source.stat().st_size)


def _no_phase(_name: str, _totals: object) -> None:
    return None


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


def _check_sqlite_backup(source: Path) -> None:
    """A whole SQLite file holding a ctxbase schema this version knows, or InvalidInputError.

    Opened read-only: checking a backup never changes it."""
    damaged = f"{source} is a damaged SQLite backup"
    try:
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as check:
            problems = [row[0] for row in check.execute("PRAGMA integrity_check(5)")]
            if problems != ["ok"]:
                raise InvalidInputError(f"{damaged}: {'; '.join(problems)}")
            found = check.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (migrate.VERSION_TABLE,),
            ).fetchone()
            revision = (
                check.execute(f"SELECT version_num FROM {migrate.VERSION_TABLE}").fetchone()
                if found
                else None
            )
    except sqlite3.DatabaseError as error:
        raise InvalidInputError(f"{damaged}: {error}") from None
    known = {rev.revision for rev in migrate.history()}
    if revision is None or revision[0] not in known:
        raise InvalidInputError(
            f"{source} holds no ctxbase schema this version knows",
            hint="a backup made by a newer ctxbase needs that version to restore it",
        )


def _sqlite_restore(source: Path, db: Database) -> None:
    """Copy every page of ``source`` over ``db`` in one step: SQLite writes them in one
    transaction of ``db``, rolled back if the copy fails."""
    origin = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
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


def _check_pg_dump(tool: str, source: Path) -> set[str]:
    """The tables of a whole ctxbase dump. Reads all of it (``pg_restore`` into no file):
    a cut or damaged dump, or one of another database, fails here, before anything is
    dropped."""
    finished = subprocess.run(
        [tool, "--file", os.devnull, str(source)], capture_output=True, text=True
    )
    if finished.returncode != 0:
        said = finished.stderr.strip().splitlines()[-1:] or [f"exit status {finished.returncode}"]
        raise InvalidInputError(f"{source} is a damaged pg_dump backup: {said[0]}")
    listed = subprocess.run([tool, "--list", str(source)], capture_output=True, text=True)
    tables = set(_DUMPED_TABLE.findall(listed.stdout))
    if migrate.VERSION_TABLE not in tables:
        raise InvalidInputError(f"{source} is a pg_dump backup of no ctxbase database")
    return tables


#: A table in ``pg_restore --list``: ``<id>; <catalog> <oid> TABLE <schema> <name> <owner>``.
_DUMPED_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE \S+ (\S+) ", re.MULTILINE)


def _require_tables_of(db: Database, dumped: set[str], source: Path) -> None:
    """The database may hold no ctxbase table the dump lacks (a later schema revision's):
    ``--clean`` drops only the dump's tables, and theirs point at them."""
    with db.connect() as connection:
        present = set(inspect(connection).get_table_names())
    extra = sorted(name for name in metadata.tables if name in present and name not in dumped)
    if extra:
        raise InvalidInputError(
            f"The database has tables that the backup {source} lacks ({', '.join(extra)}): "
            "it is at a later schema revision than the backup",
            hint="restore into an empty database, or `ctxbase db downgrade` it to the "
            "backup's revision first",
            details={"tables": extra},
        )
