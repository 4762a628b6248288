"""Every declared operation of the Store refuses unknown arguments by name
(see :mod:`ctxbase.api.strict`)."""

from __future__ import annotations

from ctxbase.api import OPERATIONS
from ctxbase.api.strict import strict


def enforce(cls: type, domain: str) -> None:
    """Make every declared operation of ``cls`` (the Store's ``domain`` sub-API) strict."""
    for op in OPERATIONS.values():
        if op.on == "rest":
            continue
        if "." not in op.name and op.name == domain:
            setattr(cls, "__call__", strict(cls.__call__, op.name))  # noqa: B010
        elif op.domain == domain and "." in op.name:
            setattr(cls, op.method_name, strict(getattr(cls, op.method_name), op.name))
