"""The two ends of a transfer: a URL, an open Store or a Database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ctxbase.config import Settings
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.errors import InvalidInputError, SchemaError

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
        if url.backend == "sqlite":
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


def open_endpoint(spec: EndpointSpec, settings: Settings) -> Endpoint:
    if isinstance(spec, str):
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


def _url_of(db: Database) -> str | None:
    if db.url.in_memory:
        return None  # another process could not reach it anyway
    return db.url.url.render_as_string(hide_password=False)


def require_head(endpoint: Endpoint, role: str) -> None:
    """The source must be at the schema this version of ctxbase copies."""
    current = migrate.current_revision(endpoint.db)
    if current != migrate.head_revision():
        raise SchemaError(
            f"The {role} database is at schema {current or 'empty'}, not {migrate.head_revision()}",
            hint="run `ctxbase db upgrade` on it first, or move data across versions with "
            "`ctxbase export` and `ctxbase import`",
        )
    migrate.detect_vector_storage(endpoint.db)
