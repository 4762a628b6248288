"""The backend as an object: what differs between SQLite and PostgreSQL, in one place.

Each :class:`~ctxbase.db.backends.base.Backend` holds the primitives that really differ
(engine set-up, transactions on driver cursors, migrations' locking, vector and full-text
search, upserts, JSON filters, diagnostics, notices, driver errors) and capability flags
for the rest. Feature code asks ``db.backend`` (a method or a flag), never its name.

This module only maps a name to its class, loading the classes on first use: it is
imported by column types, which the backends' own modules import in turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctxbase.errors import ConfigurationError

if TYPE_CHECKING:
    from ctxbase.config import Settings
    from ctxbase.db.backends.base import Backend
    from ctxbase.db.urls import DatabaseURL

_CLASSES: dict[str, type[Backend]] = {}


def backend_class(name: str) -> type[Backend]:
    """The backend class named ``name`` (a URL's backend, a dialect's or a configuration's
    kind: ``sqlite`` or ``postgresql``)."""
    found = _CLASSES.get(name)
    if found is not None:
        return found
    if not _CLASSES:
        _load()
    try:
        return _CLASSES[name]
    except KeyError:
        raise ConfigurationError(f"No ctxbase backend is named {name!r}") from None


def all_backend_classes() -> list[type[Backend]]:
    if not _CLASSES:
        _load()
    return list(_CLASSES.values())


def backend_for(url: DatabaseURL, settings: Settings) -> Backend:
    """A new backend object (with its engine) for one database."""
    return backend_class(url.backend)(url, settings)


def _load() -> None:
    from ctxbase.db.backends.postgres import PostgresBackend
    from ctxbase.db.backends.sqlite import SQLiteBackend

    for cls in (SQLiteBackend, PostgresBackend):
        _CLASSES[cls.name] = cls
