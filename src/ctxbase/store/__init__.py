"""The Store façade: one object per database, one sub-API per domain."""

from ctxbase.store.store import Store

__all__ = ["Store"]
