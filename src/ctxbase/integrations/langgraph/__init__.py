"""LangGraph persistence in ctxbase: a checkpointer and a long-term memory store.

    from ctxbase.integrations.langgraph import CtxbaseSaver, CtxbaseStore

    with (
        CtxbaseSaver.from_url("sqlite:///./agent.db") as checkpointer,
        CtxbaseStore.from_url("sqlite:///./agent.db") as store,
    ):
        graph = builder.compile(checkpointer=checkpointer, store=store)

Needs the ``langgraph`` extra: ``pip install 'ctxbase[langgraph]'``.
"""

from __future__ import annotations

try:
    import langgraph.checkpoint.base  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(
        "ctxbase.integrations.langgraph needs LangGraph: pip install 'ctxbase[langgraph]'"
    ) from e

from ctxbase.integrations.langgraph.checkpoint import CtxbaseSaver
from ctxbase.integrations.langgraph.store import AsyncCtxbaseStore, CtxbaseStore

__all__ = ["AsyncCtxbaseStore", "CtxbaseSaver", "CtxbaseStore"]
