"""The one boundary where driver errors become ctxbase errors.

Errors of either driver reach here wrapped by SQLAlchemy, or raw from prepared statements
run on driver cursors; each backend calls :func:`translate_error` with its driver's DB-API
module (see ``backends``). Everything above this module sees only :mod:`ctxbase.errors`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sqlalchemy import exc as sa_exc

from ctxbase.db.urls import DatabaseURL, mask_url
from ctxbase.errors import (
    ConflictError,
    CtxbaseError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidInputError,
    SchemaError,
)


def __getattr__(name: str) -> Any:
    """``DRIVER_ERRORS``: what the boundary catches for any backend (SQLAlchemy's errors
    and every driver's own); a database catches its own backend's ``driver_errors``."""
    if name == "DRIVER_ERRORS":
        from ctxbase.db.backends import all_backend_classes

        return (sa_exc.SQLAlchemyError, *(cls.dbapi.Error for cls in all_backend_classes()))
    raise AttributeError(name)


# PostgreSQL SQLSTATE codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_INVALID_PASSWORD = {"28P01", "28000"}
_UNKNOWN_DATABASE = "3D000"
_INSUFFICIENT_PRIVILEGE = "42501"
_UNDEFINED_TABLE = "42P01"
_UNIQUE_VIOLATION = "23505"
_FOREIGN_KEY_VIOLATION = "23503"
_CHECK_VIOLATION = "23514"
_NOT_NULL_VIOLATION = "23502"
_LOCK_TIMEOUTS = {"55P03", "40P01", "40001"}
_SERVER_GONE = {"57P01", "57P02", "57P03"}  # admin / crash shutdown, cannot connect now


def translate_error(
    error: BaseException, db_url: DatabaseURL, *, dbapi: ModuleType | None = None
) -> CtxbaseError:
    """The ctxbase error for a driver or SQLAlchemy error raised while using ``db_url``,
    whose driver is the DB-API module ``dbapi``."""
    if isinstance(error, CtxbaseError):
        return error
    integrity: tuple[type[BaseException], ...] = (sa_exc.IntegrityError,)
    operational: tuple[type[BaseException], ...] = (sa_exc.OperationalError,)
    if dbapi is not None:
        integrity, operational = (
            (*integrity, dbapi.IntegrityError),
            (*operational, dbapi.OperationalError),
        )
    where = db_url.masked()
    original = getattr(error, "orig", None) or error
    text = mask_url(str(original).strip())
    sqlstate = getattr(original, "sqlstate", None)
    lowered = text.lower()

    if isinstance(error, sa_exc.TimeoutError):
        return DatabaseBusyError(
            f"No free database connection within the pool timeout ({where})",
            hint="raise CTXBASE_POOL_SIZE / CTXBASE_MAX_OVERFLOW or CTXBASE_POOL_TIMEOUT",
        )
    if "database is locked" in lowered or "database table is locked" in lowered:
        return DatabaseBusyError(
            "The SQLite database stayed locked by another writer past the busy timeout",
            hint="raise CTXBASE_SQLITE_BUSY_TIMEOUT_MS, or move to PostgreSQL for heavy writes",
        )
    if sqlstate in _LOCK_TIMEOUTS:
        return DatabaseBusyError(f"The database could not take a lock: {text}")
    if sqlstate in _INVALID_PASSWORD or "password authentication failed" in lowered:
        return DatabaseUnavailableError(
            f"The database refused the login ({where}): wrong user name or password",
            hint="check the user and password in the database URL",
        )
    if sqlstate == _UNKNOWN_DATABASE or ("database" in lowered and "does not exist" in lowered):
        return DatabaseUnavailableError(
            f"The database does not exist on the server ({where})",
            hint="create it first, e.g. `createdb <name>`, or fix the name in the URL",
        )
    if isinstance(error, operational) and _is_unreachable(lowered):
        return DatabaseUnavailableError(
            f"The database server is unreachable ({where}): {text}",
            hint="check that the server runs and that host and port are right",
        )
    if sqlstate in _SERVER_GONE or (sqlstate or "").startswith("08") or _is_lost(lowered):
        return DatabaseUnavailableError(
            f"The connection to the database was lost ({where}): {text}",
            hint="retry: the next operation opens a new connection",
        )
    if sqlstate == _INSUFFICIENT_PRIVILEGE:
        return DatabaseError(f"The database user lacks a permission: {text}")
    if sqlstate == _UNDEFINED_TABLE or "no such table" in lowered:
        return SchemaError(
            f"The database has no ctxbase schema ({where}): {text}",
            hint="run `ctxbase db upgrade`",
        )
    if isinstance(error, integrity):
        return _integrity_error(sqlstate, lowered)
    if isinstance(error, sa_exc.StatementError) and not isinstance(error, sa_exc.DBAPIError):
        return InvalidInputError("A value could not be stored")
    if "cannot contain nul" in lowered:  # psycopg refuses NUL in text before sending it
        return InvalidInputError("Text must not contain NUL (\\x00) characters")
    return DatabaseError(f"Database error ({where}): {text}")


def _is_unreachable(lowered: str) -> bool:
    signs = (
        "connection refused",
        "could not connect",
        "connection failed",
        "timeout expired",
        "could not translate host name",
        "no such file or directory",
        "unable to open",
    )
    return any(sign in lowered for sign in signs)


def _is_lost(lowered: str) -> bool:
    signs = ("server closed the connection", "the connection is closed", "consuming input failed")
    return any(sign in lowered for sign in signs)


def _integrity_error(sqlstate: str | None, lowered: str) -> CtxbaseError:
    # A caller's input caused these: the answer is ctxbase's own words, never the driver's
    # (its text names tables, constraints and values, and would tell whose a record is).
    # The driver's error stays the cause of the raised one, for logs and debugging.
    if sqlstate == _UNIQUE_VIOLATION or "unique constraint" in lowered:
        return ConflictError("A record with the same unique key already exists")
    if sqlstate == _FOREIGN_KEY_VIOLATION or "foreign key" in lowered:
        return InvalidInputError("A referenced record does not exist")
    if sqlstate in (_CHECK_VIOLATION, _NOT_NULL_VIOLATION) or "constraint failed" in lowered:
        return InvalidInputError("A value breaks a rule of the schema")
    return ConflictError("The change conflicts with stored data")
