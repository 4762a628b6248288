"""Database URLs: parse, normalise and mask.

Accepted forms:

- ``sqlite:///path/to/file.db`` — an SQLite file, created on first use;
- ``sqlite://``, ``sqlite:///:memory:`` or ``memory://`` — in-memory, nothing persists;
- ``postgresql://``, ``postgres://`` or ``postgresql+psycopg://`` — PostgreSQL through psycopg 3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ctxbase.errors import ConfigurationError

Backend = Literal["sqlite", "postgresql"]

_MEMORY_FORMS = {"memory://", "memory:", "sqlite://", "sqlite:///:memory:"}
_SQLITE_SCHEMES = {"sqlite", "sqlite+pysqlite"}
_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}
# user:password@ inside anything that looks like a URL
_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<password>[^\s/]*)@")


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed, normalised database URL."""

    url: URL
    #: The name of the backend (see ``ctxbase.db.backends``), for display and to pick its class.
    backend: Backend
    in_memory: bool = False
    #: The file of an SQLite database; None when in memory or on PostgreSQL.
    sqlite_path: str | None = None

    def masked(self) -> str:
        """The URL as text with any password replaced by ``***``."""
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"DatabaseURL({self.masked()!r})"

    __str__ = masked


def parse_database_url(raw: str) -> DatabaseURL:
    """Parse and normalise ``raw``; raise ConfigurationError for anything unusable."""
    text = raw.strip()
    if text in _MEMORY_FORMS:
        return DatabaseURL(make_url("sqlite://"), "sqlite", in_memory=True)
    try:
        url = make_url(text)
    except ArgumentError as e:
        raise ConfigurationError(
            f"Not a database URL: {mask_url(text)!r}",
            hint="use sqlite:///path.db, sqlite:// (in memory) or postgresql://user@host/db",
        ) from e
    if url.drivername in _SQLITE_SCHEMES:
        if url.database in (None, "", ":memory:"):
            return DatabaseURL(make_url("sqlite://"), "sqlite", in_memory=True)
        return DatabaseURL(
            url.set(drivername="sqlite+pysqlite"), "sqlite", sqlite_path=url.database
        )
    if url.drivername in _POSTGRES_SCHEMES:
        if not url.database:
            raise ConfigurationError(
                f"The PostgreSQL URL names no database: {mask_url(text)!r}",
                hint="add the database name, e.g. postgresql://user@localhost:5432/ctxbase",
            )
        return DatabaseURL(url.set(drivername="postgresql+psycopg"), "postgresql")
    raise ConfigurationError(
        f"Unsupported database {url.drivername!r} in {mask_url(text)!r}",
        hint="ctxbase runs on SQLite and PostgreSQL",
    )


def mask_url(text: str) -> str:
    """Replace the password of every URL inside ``text`` by ``***``."""
    return _PASSWORD_IN_URL.sub(lambda m: f"{m.group('head')}***@", text)
