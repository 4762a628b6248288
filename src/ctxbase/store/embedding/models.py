"""Which model's vectors a store uses: the active model, recorded in the database.

The database records one active model, which ``reembed`` switches for every process; each
process re-reads it every few seconds. A provider passed in code always wins; otherwise the
active model is built from its spec with this process's provider settings, and the
``embedder`` setting only names the model a new database starts with.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ctxbase.db.database import Database
from ctxbase.db.schema import StoreSetting, table, utcnow
from ctxbase.embeddings import Embedder, embedder_from_spec
from ctxbase.errors import CtxbaseError

if TYPE_CHECKING:
    from ctxbase.config import Settings

log = logging.getLogger("ctxbase.embeddings")

settings_table = table(StoreSetting)
ACTIVE_MODEL = "embedding.active_model"
ACTIVE_MODEL_TTL_SECONDS = 5.0
#: "No provider passed in code" (None is a choice: no embedder).
UNSET: Any = object()


class ActiveModel:
    """The provider of the database's active model, for one process."""

    def __init__(self, db: Database, settings: Settings, embedder: Embedder | None) -> None:
        self._db, self._settings = db, settings
        self._explicit = embedder  # a provider passed in code always wins
        self._configured: Embedder | None = UNSET
        self._providers: dict[str, Embedder | None] = {}
        self._active: tuple[float, str | None] | None = None

    @property
    def embedder(self) -> Embedder | None:
        """The provider of the active model (a mismatch with the setting is logged once)."""
        if self._explicit is not UNSET:
            return self._explicit
        configured = self._configured_embedder()
        active = self.name()
        if active is None or (configured is not None and active == configured.name):
            return configured
        if active not in self._providers:
            try:
                self._providers[active] = self.build(active)
            except CtxbaseError as error:
                log.warning(
                    "Cannot build the store's active model %r (%s); using %r",
                    active,
                    error.message,
                    configured and configured.name,
                )
                self._providers[active] = configured
            if configured is not None:
                log.warning(
                    "This store's vectors are of model %r, not the configured %r: searches "
                    "use %r. Run `ctxbase reembed --model %s` to switch.",
                    active,
                    configured.name,
                    active,
                    configured.name,
                )
        return self._providers[active]

    def _configured_embedder(self) -> Embedder | None:
        if self._configured is UNSET:
            self._configured = self.build(self._settings.embedder)
        return self._configured

    def build(self, spec: str) -> Embedder | None:
        settings = self._settings
        key = settings.embedder_api_key
        return embedder_from_spec(
            spec,
            base_url=settings.embedder_base_url,
            api_key=key.get_secret_value() if key else None,
            dimensions=settings.embedder_dimensions,
            batch_size=settings.embedder_batch_size,
            timeout=settings.embedder_timeout,
            max_retries=settings.embedder_max_retries,
        )

    def name(self) -> str | None:
        """The model recorded in the database (re-read every few seconds)."""
        now = time.monotonic()
        if self._active is None or now - self._active[0] > ACTIVE_MODEL_TTL_SECONDS:
            self._active = (now, read_setting(self._db, ACTIVE_MODEL))
        return self._active[1]

    def record(self) -> None:
        """On open: a database without an active model takes this process's model."""
        provider = self._explicit if self._explicit is not UNSET else self._configured_embedder()
        if provider is None or self.name() is not None:
            return
        write_setting(self._db, ACTIVE_MODEL, provider.name, only_if_absent=True)
        self._active = None

    def switch(self, embedder: Embedder) -> None:
        """Make ``embedder``'s model the database's active model."""
        write_setting(self._db, ACTIVE_MODEL, embedder.name)
        self._active = None
        self._providers[embedder.name] = embedder  # no need to build it again


def read_setting(db: Database, key: str) -> Any:
    with db.read() as connection:
        return connection.execute(
            select(settings_table.c.value).where(settings_table.c.key == key)
        ).scalar()


def write_setting(db: Database, key: str, value: Any, *, only_if_absent: bool = False) -> None:
    statement = db.backend.insert(settings_table).values(key=key, value=value, updated_at=utcnow())
    if only_if_absent:
        statement = statement.on_conflict_do_nothing()
    else:
        statement = statement.on_conflict_do_update(
            index_elements=["key"], set_={"value": value, "updated_at": utcnow()}
        )
    with db.connect(write=True) as connection:
        connection.execute(statement)
