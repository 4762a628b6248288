"""Store: the entry point of the Python library."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from ctxbase.config import Settings
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.diagnostics import (
    ConnectionReport,
    check_connection,
    require_no_unfinished_migration,
)
from ctxbase.embeddings import Embedder
from ctxbase.events.notifier import EventNotifier
from ctxbase.secrets import Secrets
from ctxbase.store.base import Scope
from ctxbase.store.contexts import Contexts
from ctxbase.store.conversations import Conversations, Messages
from ctxbase.store.databases import DatabaseConfigs
from ctxbase.store.embedding import _UNSET, Embeddings
from ctxbase.store.event_writer import EventWriter
from ctxbase.store.events import Events
from ctxbase.store.health import (
    EmbedderReport,
    RedisReport,
    check_embedder,
    check_redis,
    redis_configured,
)
from ctxbase.store.imports import Imports
from ctxbase.store.jobs import Jobs
from ctxbase.store.memories import Memories, prune_expired_memories
from ctxbase.store.projects import Projects, ensure_defaults
from ctxbase.store.quality import Quality
from ctxbase.store.recall import Recall, Stats
from ctxbase.store.search import Search
from ctxbase.store.state import State, prune_expired_state
from ctxbase.store.strict import enforce
from ctxbase.store.subscriptions import Subscriptions
from ctxbase.store.tenancy import Audit, Keys, Tenants

for _domain, _cls in {
    "projects": Projects,
    "conversations": Conversations,
    "messages": Messages,
    "contexts": Contexts,
    "memories": Memories,
    "state": State,
    "search": Search,
    "events": Events,
    "subscriptions": Subscriptions,
    "tenants": Tenants,
    "keys": Keys,
    "audit": Audit,
    "embeddings": Embeddings,
    "databases": DatabaseConfigs,
    "recall": Recall,
    "stats": Stats,
    "imports": Imports,
    "jobs": Jobs,
}.items():
    enforce(_cls, _domain)  # unknown arguments are refused by name


class Store:
    """Everything ctxbase keeps in one database.

    Open one with :func:`ctxbase.open`. The first open brings the schema to head unless
    ``auto_migrate=False``; a Store is safe to share between threads.

    Sub-APIs: ``projects``, ``conversations``, ``messages``, ``contexts``, ``memories``,
    ``state``, ``embeddings``, ``events``, ``subscriptions``, ``databases``, ``imports``,
    ``jobs``. Each method acting in a project takes ``project=`` (default ``"default"``).

    ``embedder`` overrides the ``embedder`` setting with a provider object (anything with
    ``name``, ``dimensions`` and ``embed(texts)``), or ``None`` for no vectors.
    """

    scope: Scope

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        auto_migrate: bool | None = None,
        embedder: Embedder | Any | None = _UNSET,
        **options: Any,
    ) -> None:
        if isinstance(embedder, str):  # a spec: the `embedder` setting
            options["embedder"], embedder = embedder, _UNSET
        if settings is None:
            values = {"database_url": url, **options} if url else options
            settings = Settings.from_values(**values)
        elif url or options:
            # Validated again, like options given alone: model_copy would take an unknown
            # or mistyped option without a word.
            given = {"database_url": url} if url else {}
            settings = Settings.from_values(**{**settings.model_dump(), **given, **options})
        self.settings = settings
        self.secrets = Secrets(settings)
        self.db = Database(settings.database_url, settings=settings)
        migrate_now = settings.auto_migrate if auto_migrate is None else auto_migrate
        try:
            self.schema_revision = migrate.ensure_schema(self.db, auto_migrate=migrate_now)
            require_no_unfinished_migration(self.db)  # part of the data: resume or discard
            if self.schema_revision == migrate.head_revision():
                ensure_defaults(self.db)
        except BaseException:
            self.db.dispose()
            raise
        self.embeddings = Embeddings(self, embedder)
        self.databases = DatabaseConfigs(self)
        self.notifier = EventNotifier(self.db, poll_interval=settings.events_poll_interval)
        self.event_writer = EventWriter(self.db, self.notifier)
        self._attach(Scope())
        if self.schema_revision == migrate.head_revision():
            self.embeddings.record_active_model()

    def _attach(self, scope: Scope) -> None:
        self.scope = scope
        self.projects = Projects(self)
        self.conversations = Conversations(self)
        self.messages = Messages(self)
        self.contexts = Contexts(self)
        self.memories = Memories(self)
        self.state = State(self)
        self.search = Search(self)
        self.events = Events(self)
        self.subscriptions = Subscriptions(self)
        self.tenants = Tenants(self)
        self.keys = Keys(self)
        self.audit = Audit(self)
        self.recall = Recall(self)
        self.stats = Stats(self)
        self.imports = Imports(self)
        self.jobs = Jobs(self)
        self.quality = Quality(self)

    def scoped(self, scope: Scope) -> Store:
        """A view of this store limited to ``scope``, sharing its connections."""
        view = object.__new__(Store)
        view.settings, view.db, view.schema_revision = self.settings, self.db, self.schema_revision
        view.embeddings, view.secrets = self.embeddings, self.secrets
        view.databases = self.databases
        view.notifier, view.event_writer = self.notifier, self.event_writer
        view._attach(scope)
        return view

    def prune(self) -> dict[str, int]:
        """Delete expired memories and state entries in every project; counts per kind."""
        with self.db.connect(write=True) as connection:
            return {
                "memories": prune_expired_memories(connection),
                "state": prune_expired_state(connection),
            }

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``, for display (``db.backend`` does the work)."""
        return self.db.backend_name

    def check_connection(self) -> ConnectionReport:
        """Status, server version, pgvector and schema revision of this store's database."""
        return check_connection(self.db)

    def check_embedder(self) -> EmbedderReport:
        """The embedding provider: its model, whether it is loaded and answering, and the
        backlog of items still without a vector (see :mod:`ctxbase.store.health`)."""
        return check_embedder(self)

    def check_redis(self) -> RedisReport | None:
        """Whether the Redis of ``redis`` deliveries answers, and how fast; None when the
        store does not use Redis (no ``redis_url`` set and no subscription delivering by
        Redis)."""
        return check_redis(self.settings.redis_url) if redis_configured(self) else None

    def close(self) -> None:
        """Release every connection; an in-memory store loses its data."""
        self.notifier.close()
        self.db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.db.url.masked()!r})"


def open(url: str | None = None, **options: Any) -> Store:
    """Open the store at ``url`` (default: ``sqlite:///./ctxbase.db``).

    ``options`` are :class:`~ctxbase.config.Settings` fields, e.g. ``pool_size=10`` or
    ``auto_migrate=False``. The environment is not read here; the CLI and server do that.
    """
    return Store(url, **options)
