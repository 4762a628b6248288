"""The two ends of a transfer: a URL, an open Store or a Database.

Only a migration's target may be created by opening it: a source (or the target of a
resumed job) named by an SQLite path that holds no file is refused, never created. A
database that is not a ctxbase database at this version is refused with the same error
on both backends (:class:`InvalidInputError`: it is the caller's choice of database).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ctxbase.config import Settings
from ctxbase.db import migrate
from ctxbase.db.backends.sqlite import holds_an_sqlite_database
from ctxbase.db.database import Database
from ctxbase.db.urls import DatabaseURL, parse_database_url
from ctxbase.errors import InvalidInputError

if TYPE_CHECKING:  # not imported at run time: the migrate command does without the store
    from ctxbase.store import Store

EndpointSpec: TypeAlias = "str | Store | Database"


@dataclass
class Endpoint:
    """A database taking part in a transfer; closed afterwards only if opened here."""

    db: Database
    url: str | None  # the URL as given, to remember (encrypted) for a resume
    owned: bool
    store: Store | None = None

    def describe(self) -> dict[str, Any]:
        """Where the data is, for people: never a connection string, even masked."""
        url = self.db.url
        if url.sqlite_path is not None or url.in_memory:  # a file, or nothing on disk
            return {"backend": "sqlite", "database": url.sqlite_path or ":memory:"}
        return {
            "backend": "postgresql",
            "host": url.url.host or url.url.query.get("host") or "localhost",
            "port": url.url.port or 5432,
            "database": url.url.database,
        }

    def close(self) -> None:
        if self.owned:
            self.db.dispose()


def open_endpoint(
    spec: EndpointSpec, settings: Settings, *, role: str, create: bool = False
) -> Endpoint:
    """Open the ``role`` end of a transfer ("source" or "target"); an SQLite file that is
    absent is created only with ``create``."""
    if isinstance(spec, str):
        check_sqlite_file(parse_database_url(spec), role, create=create)
        return Endpoint(Database(spec, settings=settings), spec, owned=True)
    if isinstance(spec, Database):
        migrate.detect_vector_storage(spec)
        return Endpoint(spec, _url_of(spec), owned=False)
    db = getattr(spec, "db", None)  # an open Store
    if not isinstance(db, Database):
        raise InvalidInputError(
            f"Not a database URL, Store or Database: {type(spec).__name__}",
            hint="pass a URL such as sqlite:///./ctxbase.db, or an open Store",
        )
    return Endpoint(db, _url_of(db), owned=False, store=spec)


def check_sqlite_file(url: DatabaseURL, role: str, *, create: bool) -> None:
    """Refuse, before anything is opened (opening creates the file), an SQLite path that
    holds no file (unless ``create``) or a file that is not an SQLite database. ``role``
    ("source", "target", or "" for a command's own database) names it in the error."""
    if url.sqlite_path is None:
        return
    path = Path(url.sqlite_path).expanduser()
    if not path.exists():
        if create:
            return
        raise InvalidInputError(
            f"{_subject(role)} does not exist: no file at {path}",
            hint="check the path; reading a database never creates one",
            details={"role": role},
        )
    if not holds_an_sqlite_database(path):
        raise _not_ctxbase(role, "not an SQLite file")


def _subject(role: str) -> str:
    return f"The {role} database" if role else "The database"


def _not_ctxbase(role: str, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"{_subject(role)} is not a ctxbase database ({why})",
        hint="name a database that ctxbase created, or create one with `ctxbase db upgrade`",
        details={"role": role},
    )


def _url_of(db: Database) -> str | None:
    if db.url.in_memory:
        return None  # another process could not reach it anyway
    return db.url.url.render_as_string(hide_password=False)


def require_head(endpoint: Endpoint, role: str) -> None:
    """The database must be a ctxbase database at the schema this version copies."""
    current = migrate.current_revision(endpoint.db)
    if current is None:
        raise _not_ctxbase(role, "no ctxbase schema")
    if current != migrate.head_revision():
        raise InvalidInputError(
            f"The {role} database is at schema {current}, not {migrate.head_revision()}",
            hint="run `ctxbase db upgrade` on it first, or move data across versions with "
            "`ctxbase export` and `ctxbase import`",
            details={"role": role, "schema": current, "head": migrate.head_revision()},
        )
    migrate.detect_vector_storage(endpoint.db)
