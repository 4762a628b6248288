"""ctxbase: the database layer for AI agents.

import ctxbase
store = ctxbase.open("sqlite:///./agents.db")
print(store.check_connection().status)
"""

from importlib.metadata import PackageNotFoundError, version

from ctxbase.client import Client
from ctxbase.config import Settings
from ctxbase.db.diagnostics import ConnectionReport
from ctxbase.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    CtxbaseError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    SchemaError,
    VersionConflictError,
)
from ctxbase.store import Store
from ctxbase.store.aio import AsyncStore, open_async
from ctxbase.store.store import open

try:
    __version__ = version("ctxbase")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AsyncStore",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "ConnectionReport",
    "CtxbaseError",
    "DatabaseBusyError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "InvalidInputError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitedError",
    "SchemaError",
    "Settings",
    "Store",
    "VersionConflictError",
    "__version__",
    "open",
    "open_async",
]
