"""``store.databases``: the databases a deployment knows, and which one it serves.

A configuration names a PostgreSQL server (host, port, database, schema, user, password,
SSL mode, pool) or an SQLite file. The password is stored as a Fernet token and never
leaves this module except inside the URL handed to the engine; no record, report or
error carries it or a connection string.

The configurations live in the database the server starts on (its ``database_url``),
which also records which one is active: a server started on it switches to that one.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy import Connection, case, delete, func, insert, select, update

from ctxbase.config import Settings
from ctxbase.db import migrate
from ctxbase.db.backends import backend_class
from ctxbase.db.database import Database
from ctxbase.db.diagnostics import ConnectionReport, check_connection
from ctxbase.db.schema import DatabaseConfig, metadata, new_id, table, utcnow
from ctxbase.errors import ConflictError, CtxbaseError, InvalidInputError, NotFoundError
from ctxbase.records import Text, storable_text
from ctxbase.store.base import given, parse

if TYPE_CHECKING:
    from ctxbase.store.store import Store

log = logging.getLogger("ctxbase.databases")

configs_table = table(DatabaseConfig)
cfg = configs_table.c
Kind = Literal["sqlite", "postgresql"]
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class DatabaseConfigIn(BaseModel):
    """A database to register; ``password`` is write-only."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: Text = Field("", max_length=10_000)
    kind: Kind
    host: Text | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    database: Text | None = Field(None, max_length=255)
    schema_name: str | None = Field(
        None, alias="schema", max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"
    )
    username: Text | None = Field(None, max_length=255)
    password: SecretStr | None = Field(None, description="Stored encrypted; never returned.")
    sslmode: Literal[SSL_MODES] | None = None  # type: ignore[valid-type]
    pool_size: int | None = Field(None, ge=1, le=1000)
    max_overflow: int | None = Field(None, ge=0, le=1000)
    sqlite_path: Text | None = Field(None, max_length=4096)

    @field_validator("password")
    @classmethod
    def _storable_password(cls, value: SecretStr | None) -> SecretStr | None:
        return _storable_secret(value)

    @model_validator(mode="after")
    def _complete(self) -> DatabaseConfigIn:
        needed = backend_class(self.kind).config_requires
        if not getattr(self, needed):
            raise ValueError(f"a configuration of kind {self.kind!r} needs {needed}")
        return self


class DatabaseConfigPatch(BaseModel):
    """Fields to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    description: Text | None = Field(None, max_length=10_000)
    host: Text | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    database: Text | None = Field(None, max_length=255)
    schema_name: str | None = Field(
        None, alias="schema", max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"
    )
    username: Text | None = Field(None, max_length=255)
    password: SecretStr | None = None
    sslmode: Literal[SSL_MODES] | None = None  # type: ignore[valid-type]
    pool_size: int | None = Field(None, ge=1, le=1000)
    max_overflow: int | None = Field(None, ge=0, le=1000)
    sqlite_path: Text | None = Field(None, max_length=4096)

    @field_validator("password")
    @classmethod
    def _storable_password(cls, value: SecretStr | None) -> SecretStr | None:
        return _storable_secret(value)


def _storable_secret(value: SecretStr | None) -> SecretStr | None:
    """A password a connection can carry: no NUL, no lone surrogate (never echoed back)."""
    if value is not None:
        try:
            storable_text(value.get_secret_value())
        except ValueError:
            raise ValueError("password must be text without NUL or lone surrogates") from None
    return value


class _InitializeOptions(BaseModel):
    model_config = ConfigDict(strict=True)

    require_pgvector: bool = False


class DatabaseConfigRecord(BaseModel):
    """A registered database as every interface shows it: no password, no URL."""

    model_config = ConfigDict(populate_by_name=True)

    id: uuid.UUID
    name: str
    description: str
    kind: Kind
    host: str | None
    port: int | None
    database: str | None
    schema_name: str | None = Field(alias="schema")
    username: str | None
    has_password: bool
    sslmode: str | None
    pool_size: int | None
    max_overflow: int | None
    sqlite_path: str | None
    status: str
    is_active: bool
    pgvector_enabled: bool
    pgvector_version: str | None
    server_version: str | None
    last_tested_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class PgvectorState(BaseModel):
    installed: bool = Field(description="Enabled in this database.")
    available: bool = Field(description="The server has it: initialize can enable it.")
    version: str | None = None
    problem: str | None = None


class DatabaseTestReport(BaseModel):
    """The outcome of testing (or initializing) a configured database."""

    ok: bool
    status: str = Field(description="ok, degraded or error, as `ctxbase doctor` says.")
    server_version: str | None = None
    pgvector: PgvectorState | None = None
    schema_revision: str | None = None
    head_revision: str
    reason: str | None = Field(None, description="Why the database cannot be used, if not.")
    problems: list[dict[str, Any]] = Field(default_factory=list)


class TableStatistics(BaseModel):
    table: str
    rows: int
    bytes: int | None = Field(None, description="Table and index size; None if unknown.")


class DatabaseConfigs:
    """Register, test, initialize and measure databases; remember the active one."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store.db

    # --- records --------------------------------------------------------------------------

    def add(
        self,
        *,
        name: str,
        description: str = "",
        kind: Kind,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        schema_name: str | None = None,
        username: str | None = None,
        password: str | SecretStr | None = None,
        sslmode: str | None = None,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        sqlite_path: str | None = None,
    ) -> DatabaseConfigRecord:
        """Register a database (see :class:`DatabaseConfigIn`); the password is stored
        encrypted and never shown again."""
        data = _parse(DatabaseConfigIn, given(DatabaseConfigIn, locals()))
        now = utcnow()
        values = data.model_dump(exclude={"password"})
        values["schema"] = values.pop("schema_name")
        values["password_encrypted"] = self._encrypt(data.password)
        row = {
            **values,
            "id": new_id(),
            "status": "configured",
            "is_active": False,
            "pgvector_enabled": False,
            "created_at": now,
            "updated_at": now,
        }
        with self._db.connect(write=True) as connection:
            if self._find(connection, data.name) is not None:
                raise ConflictError(f"A database configuration named {data.name!r} exists")
            connection.execute(insert(configs_table), row)
        return self.get(row["id"])

    def list(self) -> list[DatabaseConfigRecord]:
        with self._db.connect() as connection:
            rows = connection.execute(select(configs_table).order_by(cfg.name)).mappings().all()
        return [_record(row) for row in rows]

    def get(self, ref: uuid.UUID | str) -> DatabaseConfigRecord:
        with self._db.connect() as connection:
            return _record(self._row(connection, ref))

    def update(
        self,
        ref: uuid.UUID | str,
        *,
        description: str | None = None,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        schema_name: str | None = None,
        username: str | None = None,
        password: str | SecretStr | None = None,
        sslmode: str | None = None,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        sqlite_path: str | None = None,
    ) -> DatabaseConfigRecord:
        """Change the given fields (``None`` leaves one as it is); the result must still be
        a complete configuration."""
        patch = _parse(DatabaseConfigPatch, given(DatabaseConfigPatch, locals()))
        values = patch.model_dump(exclude_unset=True, exclude={"password"})
        if "schema_name" in values:
            values["schema"] = values.pop("schema_name")
        if "password" in patch.model_fields_set:
            values["password_encrypted"] = self._encrypt(patch.password)
        with self._db.connect(write=True) as connection:
            row = self._row(connection, ref)
            merged = {**dict(row), **values}
            _parse(DatabaseConfigIn, _as_input(merged))  # still a complete configuration
            migrating = row["status"] == "migrating"  # until the job ends
            values.update(status="migrating" if migrating else "configured", updated_at=utcnow())
            connection.execute(update(configs_table).where(cfg.id == row["id"]).values(values))
        return self.get(row["id"])

    def delete(self, ref: uuid.UUID | str) -> None:
        with self._db.connect(write=True) as connection:
            row = self._row(connection, ref)
            if row["is_active"]:
                raise ConflictError("The active database cannot be deleted; activate another first")
            connection.execute(delete(configs_table).where(cfg.id == row["id"]))

    # --- connecting -----------------------------------------------------------------------

    def url(self, ref: uuid.UUID | str) -> str:
        """The connection URL, password included: for engines only, never for display."""
        with self._db.connect() as connection:
            row = self._row(connection, ref)
        return self._url(row)

    def settings_for(self, ref: uuid.UUID | str) -> Settings:
        """This store's settings, on the configured database with its pool settings."""
        with self._db.connect() as connection:
            row = self._row(connection, ref)
        update_values: dict[str, Any] = {"database_url": self._url(row)}
        if row["pool_size"] is not None:
            update_values["pool_size"] = row["pool_size"]
        if row["max_overflow"] is not None:
            update_values["max_overflow"] = row["max_overflow"]
        return self._store.settings.model_copy(update=update_values)

    def test(self, ref: uuid.UUID | str) -> DatabaseTestReport:
        """Connect and report: reachable, server version, pgvector, schema revision."""
        with self._db.connect() as connection:
            row = self._row(connection, ref)
        report = self._check(row)
        self._record_test(row["id"], report, status="tested" if report.ok else "error")
        return report

    def initialize(
        self, ref: uuid.UUID | str, *, require_pgvector: bool = False
    ) -> DatabaseTestReport:
        """Bring the schema to head, enabling pgvector where the server has it.

        ``require_pgvector``: fail, changing nothing, if pgvector cannot be enabled."""
        require_pgvector = parse(
            _InitializeOptions, {"require_pgvector": require_pgvector}
        ).require_pgvector
        with self._db.connect() as connection:
            row = self._row(connection, ref)
        try:
            with Database(self._url(row), settings=self._store.settings) as db:
                status = db.backend.prepare_database(db, schema=row["schema"])
                if require_pgvector and status is not None and not status.installed:
                    raise InvalidInputError(
                        f"pgvector cannot be enabled: {status.problem}", hint=_PGVECTOR_HINT
                    )
                migrate.upgrade(db)
        except CtxbaseError as error:
            self._record_test(row["id"], None, status="error", error=error.message)
            raise
        return self.test(row["id"])

    def statistics(self, ref: uuid.UUID | str) -> builtins.list[TableStatistics]:
        """Rows and bytes per ctxbase table of the configured database."""
        with self._db.connect() as connection:
            row = self._row(connection, ref)
        with (
            Database(self._url(row), settings=self._store.settings) as db,
            db.connect() as connection,
        ):
            return table_statistics(connection, db.backend.table_sizes(connection))

    # --- the active database --------------------------------------------------------------

    def active(self) -> DatabaseConfigRecord | None:
        with self._db.connect() as connection:
            row = connection.execute(select(configs_table).where(cfg.is_active)).mappings().first()
        return _record(row) if row else None

    def mark_active(self, ref: uuid.UUID | str | None) -> DatabaseConfigRecord | None:
        """Make ``ref`` the one active configuration (None: serve the home database)."""
        with self._db.connect(write=True) as connection:
            target = self._row(connection, ref) if ref is not None else None
            if target is not None and target["status"] == "migrating":
                raise ConflictError(
                    f"A migration job is writing into database {target['name']!r}",
                    hint="activate it once the job has ended",
                )
            connection.execute(
                update(configs_table)
                .where(cfg.is_active)
                .values(
                    is_active=False,
                    status=case((cfg.status == "migrating", "migrating"), else_="tested"),
                    updated_at=utcnow(),
                )
            )
            if target is not None:
                connection.execute(
                    update(configs_table)
                    .where(cfg.id == target["id"])
                    .values(is_active=True, status="active", updated_at=utcnow())
                )
        return self.get(target["id"]) if target is not None else None

    # --- migrations writing into a configured database ------------------------------------

    def mark_migrating(self, ref: uuid.UUID | str) -> tuple[uuid.UUID, str]:
        """Show the configuration as ``migrating`` while a job writes into it; its id and
        status before, for :meth:`unmark_migrating`. ConflictError if a job already does."""
        with self._db.connect(write=True) as connection:
            row = self._row(connection, ref)
            if row["status"] == "migrating":
                raise ConflictError(
                    f"A migration job is already writing into database {row['name']!r}"
                )
            connection.execute(
                update(configs_table)
                .where(cfg.id == row["id"])
                .values(status="migrating", updated_at=utcnow())
            )
        return row["id"], row["status"]

    def unmark_migrating(self, ref: uuid.UUID | str, previous: str) -> None:
        """Give the configuration its status before the job (if it still shows it)."""
        with self._db.connect(write=True) as connection:
            row = self._row(connection, ref)
            if row["status"] == "migrating":
                status = "active" if row["is_active"] else previous
                connection.execute(
                    update(configs_table)
                    .where(cfg.id == row["id"])
                    .values(status=status, updated_at=utcnow())
                )

    # --- helpers --------------------------------------------------------------------------

    def _encrypt(self, password: SecretStr | None) -> bytes | None:
        if password is None or not password.get_secret_value():
            return None
        return self._store.secrets.encrypt(password.get_secret_value())

    def _url(self, row: Any) -> str:
        def password() -> str | None:
            encrypted = row["password_encrypted"]
            return self._store.secrets.decrypt(encrypted) if encrypted else None

        return backend_class(row["kind"]).config_url(row, password)

    def _check(self, row: Any) -> DatabaseTestReport:
        try:
            with Database(self._url(row), settings=self._store.settings) as db:
                report = check_connection(db)
        except CtxbaseError as error:
            return DatabaseTestReport(
                ok=False,
                status="error",
                head_revision=migrate.head_revision(),
                reason=error.message,
            )
        return _test_report(report)

    def _record_test(
        self,
        config_id: uuid.UUID,
        report: DatabaseTestReport | None,
        *,
        status: str,
        error: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"last_tested_at": utcnow(), "updated_at": utcnow()}
        if report is not None:
            pgvector = report.pgvector
            values.update(
                server_version=report.server_version,
                pgvector_enabled=bool(pgvector and pgvector.installed),
                pgvector_version=pgvector.version if pgvector else None,
                last_error=report.reason,
            )
        if error is not None:
            values["last_error"] = error
        with self._db.connect(write=True) as connection:
            current = connection.execute(
                select(cfg.is_active, cfg.status).where(cfg.id == config_id)
            ).first()
            if current is not None and current.status == "migrating":
                values["status"] = "migrating"  # until the job writing into it ends
            else:
                active = current is not None and current.is_active
                values["status"] = "active" if active and status != "error" else status
            connection.execute(update(configs_table).where(cfg.id == config_id).values(values))

    @staticmethod
    def _find(connection: Connection, name: str) -> Any:
        return connection.execute(select(configs_table).where(cfg.name == name)).mappings().first()

    def _row(self, connection: Connection, ref: uuid.UUID | str) -> Any:
        row = None
        config_id = _as_uuid(ref)
        if config_id is not None:
            row = (
                connection.execute(select(configs_table).where(cfg.id == config_id))
                .mappings()
                .first()
            )
        if row is None and isinstance(ref, str):
            row = self._find(connection, ref)
        if row is None:
            raise NotFoundError(f"No database configuration {str(ref)!r}")
        return row


_PGVECTOR_HINT = "install pgvector on the server, or initialize without requiring it"


def table_statistics(connection: Connection, sizes: dict[str, int]) -> list[TableStatistics]:
    """Rows and bytes (from ``sizes``) of every ctxbase table present in the database."""
    present = set(connection.dialect.get_table_names(connection))
    stats = []
    for name, schema_table in metadata.tables.items():
        if name not in present:
            continue
        rows = connection.execute(select(func.count()).select_from(schema_table)).scalar_one()
        stats.append(TableStatistics(table=name, rows=int(rows), bytes=sizes.get(name)))
    return stats


def url_of_named_config(settings: Settings, name: str) -> str:
    """The URL of configuration ``name`` in the database of ``settings`` (for the CLI)."""
    from ctxbase.store.store import Store

    with Store(settings=settings) as store:
        return store.databases.url(name)


def _test_report(report: ConnectionReport) -> DatabaseTestReport:
    pgvector = report.pgvector
    error = next((p for p in report.problems), None) if report.status == "error" else None
    return DatabaseTestReport(
        ok=report.status != "error",
        status=report.status,
        server_version=report.server_version,
        pgvector=PgvectorState(
            installed=pgvector.installed,
            available=pgvector.available,
            version=pgvector.version,
            problem=pgvector.problem,
        )
        if pgvector
        else None,
        schema_revision=report.schema_revision,
        head_revision=report.head_revision,
        reason=error.message if error else None,
        problems=[p.model_dump() for p in report.problems],
    )


def _record(row: Any) -> DatabaseConfigRecord:
    values = dict(row)
    values["schema_name"] = values.pop("schema", None)
    values["has_password"] = values.pop("password_encrypted", None) is not None
    return DatabaseConfigRecord.model_validate(values)


def _as_input(row: dict[str, Any]) -> dict[str, Any]:
    keys = DatabaseConfigIn.model_fields.keys() - {"password", "schema_name"}
    values = {k: row[k] for k in keys if k in row}
    values["schema"] = row.get("schema")
    return values


def _as_uuid(ref: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(ref, uuid.UUID):
        return ref
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


def _parse(model: type[BaseModel], values: dict[str, Any]) -> Any:
    return parse(model, values)
