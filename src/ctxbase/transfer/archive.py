"""Export and import: a portable, versioned, compressed JSON Lines archive.

The archive is a gzip stream of JSON lines::

    {"format": "ctxbase-archive", "version": 1, "ctxbase": "…", "schema": "0006", …}
    {"table": "tenants", "row": {"id": "…", "slug": "default", …}}
    …
    {"end": true, "rows": {"tenants": 1, …}}

Rows name their columns, so an archive reads into any ctxbase version: columns this
version lacks are ignored, columns the archive lacks take their defaults. Values are JSON:
UUIDs and timestamps (UTC, ISO 8601) as strings, bytes as base64, vectors as base64 of
little-endian float32s. The closing line guards against a truncated file.

An import runs in one transaction: it writes everything or nothing. Tenants are matched
by slug and projects by slug within their tenant, so an export of one project imports into
a store that already has its own ``default`` tenant; an existing project must be empty.
A restore (:func:`replace_with_archive`) reads the whole archive once before it touches
the database, then empties the database and imports in that same one transaction.

An export writes ``<name>.partial`` and renames it when complete; a failed export removes
it, so a file under the final name is always a whole archive.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    LargeBinary,
    Table,
    Uuid,
    func,
    select,
)

import ctxbase
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.schema import metadata
from ctxbase.db.types import EmbeddingVector, UTCDateTime
from ctxbase.errors import ConflictError, InvalidInputError, NotFoundError
from ctxbase.transfer.reading import TableReader
from ctxbase.transfer.tables import TablePlan, data_tables, plan_tables
from ctxbase.transfer.writing import CoreInsertWriter, LinkWriter, describe

FORMAT = "ctxbase-archive"
VERSION = 1
BATCH = 1000
#: Tables that belong to a tenant rather than a project: left out of a project's export
#: (the audit log records the tenant's keys and administration, not the project's data).
TENANT_WIDE = frozenset({"api_keys", "audit_log", "store_settings"})

Encoder = Callable[[Any], Any]
#: Told of the rows written or read, per table, as they go.
RowsCallback = Callable[[str, int], None]
#: Told when a phase starts ("exporting", "checking", …), with the rows it will move per
#: table where known (None: not known before the end; empty: a step without rows).
PhaseCallback = Callable[[str, Mapping[str, int | None]], None]


class ArchiveReport(BaseModel):
    path: str
    rows: dict[str, int]
    skipped_columns: list[str] = []
    skipped_tables: list[str] = []


# --- values ------------------------------------------------------------------------------


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _encoder(column: Column[Any]) -> Encoder | None:
    kind = column.type
    if isinstance(kind, EmbeddingVector):
        return lambda v: _b64(np.asarray(v, dtype="<f4").tobytes())
    if isinstance(kind, UTCDateTime):
        return lambda v: v.isoformat()
    if isinstance(kind, Uuid):
        return str
    if isinstance(kind, LargeBinary):
        return _b64
    return None


def _decoder(column: Column[Any]) -> Encoder | None:
    kind = column.type
    if isinstance(kind, EmbeddingVector):
        return lambda v: np.frombuffer(base64.b64decode(v), dtype="<f4").astype(np.float32)
    if isinstance(kind, UTCDateTime):
        return datetime.fromisoformat
    if isinstance(kind, Uuid):
        return uuid.UUID
    if isinstance(kind, LargeBinary):
        return base64.b64decode
    if isinstance(kind, JSON):
        return None
    return None


# --- export ------------------------------------------------------------------------------


def export_archive(
    db: Database,
    path: str | Path,
    *,
    project: str | None = None,
    with_embeddings: bool = False,
    progress: RowsCallback | None = None,
    on_phase: PhaseCallback | None = None,
) -> ArchiveReport:
    """Write the store in ``db`` (or one ``project`` of its default tenant) to ``path``.
    ``on_phase`` is told the rows of each table first (counting them costs a query each)."""
    migrate.detect_vector_storage(db)
    names = [n for n in data_tables() if with_embeddings or n != "embeddings"]
    if project is not None:
        names = [n for n in names if n not in TENANT_WIDE]
    plans = plan_tables(names)
    filters = _project_filters(db, project, plans) if project is not None else {}
    counts: dict[str, int] = {}
    target = Path(path)
    if not target.parent.is_dir():
        raise InvalidInputError(
            f"Cannot write {target}: no directory {target.parent}",
            hint="create the directory first, or choose another path",
        )
    if on_phase is not None:
        on_phase("exporting", _counts(db, plans, filters))
    with (
        written_through_partial(target) as partial,
        gzip.open(partial, "wt", encoding="utf-8", compresslevel=6) as out,
    ):
        _write_line(out, _header(project, with_embeddings, names))
        for plan in plans:
            counts[plan.name] = _export_table(db, plan, filters.get(plan.name), out, progress)
        _write_line(out, {"end": True, "rows": counts})
    return ArchiveReport(path=str(target), rows=counts)


@contextmanager
def written_through_partial(target: Path) -> Iterator[Path]:
    """The file ``<target>.partial`` to write in the block, renamed to ``target`` when the
    block ends and removed when it fails: a half-written file never takes the final name.
    A failure to write is an InvalidInputError naming ``target``."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        yield partial
        partial.replace(target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InvalidInputError(f"Cannot write {target}: {error.strerror or error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _counts(db: Database, plans: list[TablePlan], filters: dict[str, Any]) -> dict[str, int]:
    counts = {}
    with db.read() as connection:
        for plan in plans:
            query = select(func.count()).select_from(plan.table)
            if plan.name in filters:
                query = query.where(filters[plan.name])
            counts[plan.name] = int(connection.execute(query).scalar_one())
    return counts


def _header(project: str | None, with_embeddings: bool, tables: list[str]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "ctxbase": ctxbase.__version__,
        "schema": migrate.head_revision(),
        "created_at": datetime.now().astimezone().isoformat(),
        "project": project,
        "with_embeddings": with_embeddings,
        "tables": tables,
    }


def _export_table(
    db: Database,
    plan: TablePlan,
    where: Any,
    out: IO[str],
    progress: Callable[[str, int], None] | None,
) -> int:
    reader = TableReader(db, plan, where=where)
    names = [c.name for c in reader.columns]
    encoders = [_encoder(c) for c in reader.columns]
    count, after = 0, None
    while True:
        with db.read() as connection:
            page = reader.page(connection, after, BATCH)
        if not page.raw:
            return count
        lines = []
        for row in page.decoded_values():
            values = {
                name: value if encode is None or value is None else encode(value)
                for name, encode, value in zip(names, encoders, row, strict=True)
            }
            lines.append(json.dumps({"table": plan.name, "row": values}, ensure_ascii=False))
        out.write("\n".join(lines) + "\n")
        count += len(page)
        if progress:
            progress(plan.name, len(page))
        after = page.last_key


def _project_filters(db: Database, slug: str, plans: list[TablePlan]) -> dict[str, Any]:
    """A WHERE clause per table keeping the rows of project ``slug`` (default tenant)."""
    tenants, projects = metadata.tables["tenants"], metadata.tables["projects"]
    with db.read() as connection:
        found = connection.execute(
            select(projects.c.id, projects.c.tenant_id)
            .join(tenants, tenants.c.id == projects.c.tenant_id)
            .where(projects.c.slug == slug, tenants.c.slug == "default")
        ).first()
    if found is None:
        raise NotFoundError(f"No project {slug!r}")
    project_id, tenant_id = found
    filters: dict[str, Any] = {
        "tenants": tenants.c.id == tenant_id,
        "projects": projects.c.id == project_id,
    }
    for plan in plans:
        table = plan.table
        if plan.name in filters:
            continue
        if "project_id" in table.c:
            filters[plan.name] = table.c.project_id == project_id
            continue
        for fk in table.foreign_keys:  # e.g. memory_changes through memories
            parent = fk.column.table
            if parent.name in filters and parent is not table:
                keys = select(fk.column).where(filters[parent.name])
                filters[plan.name] = fk.parent.in_(keys)
                break
    return filters


def _write_line(out: IO[str], value: dict[str, Any]) -> None:
    out.write(json.dumps(value, ensure_ascii=False) + "\n")


# --- import ------------------------------------------------------------------------------


def import_archive(
    db: Database,
    path: str | Path,
    *,
    progress: RowsCallback | None = None,
    on_phase: PhaseCallback | None = None,
) -> ArchiveReport:
    """Read the archive at ``path`` into ``db`` in one transaction (all or nothing)."""
    migrate.ensure_schema(db)
    with db.connect(write=True) as connection:
        return _import(connection, Path(path), progress, on_phase=on_phase)


def check_archive(path: str | Path) -> dict[str, int]:
    """Read the whole archive at ``path`` without writing anything: a readable gzip
    stream, a header, JSON objects each a row, and a closing line whose counts match the
    rows. Returns the rows per table; raises InvalidInputError on the first fault."""
    lines = _lines(Path(path))
    _check_header(next(lines, None))
    counts: dict[str, int] = {}
    for entry in lines:
        if entry.get("end"):
            _check_counts(entry, counts)
            if next(lines, None) is not None:
                raise InvalidInputError("The archive goes on after its closing line")
            return counts
        name = entry.get("table")
        if not isinstance(name, str) or not isinstance(entry.get("row"), dict):
            raise InvalidInputError("An archive line is neither a row nor the closing line")
        counts[name] = counts.get(name, 0) + 1
    raise InvalidInputError("The archive is truncated (no closing line)")


def replace_with_archive(
    db: Database,
    path: str | Path,
    *,
    progress: RowsCallback | None = None,
    on_phase: PhaseCallback | None = None,
) -> ArchiveReport:
    """Replace every ctxbase row of ``db`` with the archive's, in one transaction: the
    archive is read whole first, and any fault after that rolls the emptying back too."""
    source = Path(path)
    if on_phase is not None:
        on_phase("checking the backup", {})
    counts = check_archive(source)
    if on_phase is not None:
        on_phase("restoring", counts)
    migrate.ensure_schema(db)
    with db.connect(write=True) as connection:
        for table in reversed(metadata.sorted_tables):  # children first
            connection.execute(table.delete())
        return _import(connection, source, progress)


def _import(
    connection: Connection,
    path: Path,
    progress: RowsCallback | None,
    *,
    on_phase: PhaseCallback | None = None,
) -> ArchiveReport:
    """Import the archive in ``connection``'s transaction; raises (so that it rolls back)
    on any fault."""
    lines = _lines(path)
    header = next(lines, None)
    _check_header(header)
    if on_phase is not None and header is not None:
        tables = header.get("tables")
        on_phase("importing", dict.fromkeys(tables if isinstance(tables, list) else [], None))
    importer = _Importer(progress)
    for entry in lines:
        if entry.get("end"):
            importer.finish(connection)
            _check_counts(entry, importer.counts_in_archive)
            return importer.report(str(path))
        importer.add(connection, entry)
    raise InvalidInputError("The archive is truncated (no closing line); nothing was imported")


def _check_counts(end: dict[str, Any], counted: dict[str, int]) -> None:
    rows = end.get("rows")
    announced = {k: v for k, v in rows.items() if v} if isinstance(rows, dict) else None
    if announced != counted:
        raise InvalidInputError("The archive's row counts do not match its rows")


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        raise InvalidInputError(f"No such file: {path}")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError:
                    raise InvalidInputError(f"Line {number} of the archive is not JSON") from None
                if not isinstance(value, dict):
                    raise InvalidInputError(f"Line {number} of the archive is not an object")
                yield value
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:  # not gzip, cut short
        raise InvalidInputError(f"Not a readable ctxbase archive: {error}") from None


def _check_header(header: dict[str, Any] | None) -> None:
    if header is None or header.get("format") != FORMAT:
        raise InvalidInputError("Not a ctxbase archive (no ctxbase-archive header)")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise InvalidInputError(
            f"Archive format version {version} is newer than this ctxbase reads ({VERSION})",
            hint="upgrade ctxbase to import it",
        )


class _Importer:
    """Buffers rows per table, remaps tenants and projects, inserts in batches."""

    def __init__(self, progress: RowsCallback | None) -> None:
        self.progress = progress
        self.tables = {
            plan.name: plan
            for plan in plan_tables([n for n in metadata.tables if n in set(data_tables())])
        }
        self.ids: dict[str, dict[Any, Any]] = {"tenants": {}, "projects": {}}
        self.counts: dict[str, int] = {}
        self.counts_in_archive: dict[str, int] = {}
        self.skipped_columns: set[str] = set()
        self.skipped_tables: set[str] = set()
        self.buffer: list[dict[str, Any]] = []
        self.buffer_table: str | None = None
        self.links: list[tuple[str, dict[str, Any]]] = []

    def add(self, connection: Connection, entry: dict[str, Any]) -> None:
        name, raw = entry.get("table"), entry.get("row")
        if not isinstance(name, str) or not isinstance(raw, dict):
            raise InvalidInputError("An archive line is neither a row nor the closing line")
        self.counts_in_archive[name] = self.counts_in_archive.get(name, 0) + 1
        plan = self.tables.get(name)
        if plan is None:
            self.skipped_tables.add(name)
            return
        if name != self.buffer_table:
            self.flush(connection)
            self.buffer_table = name
        row = self._remap(connection, plan, self._decode(plan.table, raw))
        if row is not None:
            self.buffer.append(row)
        if len(self.buffer) >= BATCH:
            self.flush(connection)

    def _decode(self, table: Table, raw: dict[str, Any]) -> dict[str, Any]:
        row = {}
        for key, value in raw.items():
            column = table.c.get(key)
            if column is None:
                self.skipped_columns.add(f"{table.name}.{key}")
                continue
            decode = _decoder(column)
            try:
                row[column.key] = value if decode is None or value is None else decode(value)
            except (ValueError, TypeError) as error:
                raise InvalidInputError(f"Bad value for {table.name}.{key}: {error}") from None
        return row

    def _remap(
        self, connection: Connection, plan: TablePlan, row: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Point rows at the target's own tenant and project where they already exist."""
        table = plan.table
        for fk in table.foreign_keys:
            mapping = self.ids.get(fk.column.table.name)
            if mapping and row.get(fk.parent.key) in mapping:
                row[fk.parent.key] = mapping[row[fk.parent.key]]
        if plan.name == "tenants":
            existing = connection.execute(
                select(table.c.id).where(table.c.slug == row["slug"])
            ).scalar()
            if existing is not None:
                self.ids["tenants"][row["id"]] = existing
                return None
        if plan.name == "projects":
            return self._project(connection, table, row)
        if (
            plan.key.name in ("key", "project_id")
            and connection.execute(select(plan.key).where(plan.key == row[plan.key.key])).first()
        ):
            return None  # a setting or stream the target already has: the target's wins
        if plan.self_references:
            links = {name: row.pop(name, None) for name in plan.self_references}
            if any(v is not None for v in links.values()):
                self.links.append((plan.name, {"_key": row[plan.key.key], **links}))
        return row

    def _project(
        self, connection: Connection, table: Table, row: dict[str, Any]
    ) -> dict[str, Any] | None:
        existing = connection.execute(
            select(table.c.id).where(
                table.c.tenant_id == row["tenant_id"], table.c.slug == row["slug"]
            )
        ).scalar()
        if existing is None:
            return row
        if _project_holds_data(connection, existing):
            raise ConflictError(
                f"Project {row['slug']!r} already holds data in the target; nothing was imported",
                hint="import into an empty database, or rename or delete that project first",
            )
        self.ids["projects"][row["id"]] = existing
        return None

    def flush(self, connection: Connection) -> None:
        if not self.buffer or self.buffer_table is None:
            return
        plan = self.tables[self.buffer_table]
        columns = [c for c in plan.table.columns if c.key in self.buffer[0]]
        writer = CoreInsertWriter(plan.table, columns)
        try:
            with connection.begin_nested():
                writer.write_rows(
                    connection, [[r.get(c.key) for c in columns] for r in self.buffer]
                )
        except Exception as error:
            raise InvalidInputError(
                f"The archive's {plan.name} rows cannot be written: {describe(error)}; "
                "nothing was imported"
            ) from None
        self.counts[plan.name] = self.counts.get(plan.name, 0) + len(self.buffer)
        if self.progress:
            self.progress(plan.name, len(self.buffer))
        self.buffer = []

    def finish(self, connection: Connection) -> None:
        self.flush(connection)
        for name, values in self.links:  # self-references, now that every row exists
            plan = self.tables[name]
            refs = [plan.table.c[k] for k in plan.self_references]
            writer = LinkWriter(plan.table, plan.key, refs)
            writer.write_rows(connection, [[values["_key"], *(values[c.key] for c in refs)]])

    def report(self, path: str) -> ArchiveReport:
        return ArchiveReport(
            path=path,
            rows=self.counts,
            skipped_columns=sorted(self.skipped_columns),
            skipped_tables=sorted(self.skipped_tables),
        )


#: Tables with a project that hold no record of it: a counter, created with the project.
NOT_RECORDS = frozenset({"event_streams"})


def _project_holds_data(connection: Connection, project_id: Any) -> bool:
    """Any table of the schema holds a record of the project (whatever the table: a new
    kind of record counts without this list knowing it)."""
    for t in metadata.sorted_tables:
        if "project_id" not in t.c or t.name in NOT_RECORDS:
            continue
        found = select(t.c.project_id).where(t.c.project_id == project_id).limit(1)
        if connection.execute(found).first() is not None:
            return True
    return False
