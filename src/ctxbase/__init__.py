"""ctxbase: the database layer for AI agents.

import ctxbase
store = ctxbase.open("sqlite:///./agents.db")
print(store.check_connection().status)
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ctxbase import errors
from ctxbase.config import Settings
from ctxbase.errors import *  # noqa: F403 (every error class: errors.__all__ lists them)

if TYPE_CHECKING:
    from ctxbase.client import AsyncClient, Client
    from ctxbase.db.diagnostics import ConnectionReport
    from ctxbase.store import Store
    from ctxbase.store.aio import AsyncStore, open_async
    from ctxbase.store.store import open

#: Imported on first use (PEP 562): a command that needs only part of the package, such
#: as ``ctxbase migrate``, does not pay for the store, the HTTP client and their
#: dependencies at start.
_LAZY = {
    "AsyncClient": "ctxbase.client",
    "AsyncStore": "ctxbase.store.aio",
    "Client": "ctxbase.client",
    "ConnectionReport": "ctxbase.db.diagnostics",
    "Store": "ctxbase.store",
    "open": "ctxbase.store.store",
    "open_async": "ctxbase.store.aio",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ctxbase' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


try:
    __version__ = version("ctxbase")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AsyncClient",
    "AsyncStore",
    "Client",
    "ConnectionReport",
    "Settings",
    "Store",
    "__version__",
    "open",
    "open_async",
]
__all__ += errors.__all__
