"""The Store façade: one object per database, one sub-API per domain.

``Store`` is imported on first use, so the domain modules (and the API declarations that
name their records) can be imported without building the whole façade first.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctxbase.store.store import Store


def __getattr__(name: str) -> Any:
    if name == "Store":
        from ctxbase.store.store import Store

        return Store
    raise AttributeError(f"module 'ctxbase.store' has no attribute {name!r}")


__all__ = ["Store"]
