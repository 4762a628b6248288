"""Calls with a misspelled or unknown argument fail as bad input, naming it.

Python would raise a bare ``TypeError`` for ``memories.add("x", importanse=0.9)``; every
declared operation raises :class:`InvalidInputError` instead, on every interface, listing
each unknown or missing argument. The check runs only when a call fails, so a good call
costs nothing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from ctxbase.errors import InvalidInputError


def argument_error(name: str, signature: inspect.Signature, args: Any, kwargs: Any) -> Exception:
    """InvalidInputError naming what is wrong with a call of ``name``; a bare TypeError
    when the arguments do bind (the TypeError came from inside the call, not from it)."""
    unknown = sorted(set(kwargs) - set(signature.parameters))
    problems: list[dict[str, Any]] = [
        {"location": [field], "message": "unknown field", "type": "extra_forbidden"}
        for field in unknown
    ]
    if not problems:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            problems = [{"location": [], "message": str(error), "type": "arguments"}]
    if not problems:
        return TypeError()  # marker: not an argument problem
    listed = "; ".join(
        f"{'.'.join(p['location'])}: {p['message']}" if p["location"] else str(p["message"])
        for p in problems
    )
    return InvalidInputError(f"Invalid input to {name}: {listed}", details=problems)


def strict(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    signature = inspect.signature(function)
    bound_signature = signature.replace(parameters=list(signature.parameters.values())[1:])

    @functools.wraps(function)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(self, *args, **kwargs)
        except TypeError:
            error = argument_error(name, bound_signature, args, kwargs)
            if isinstance(error, InvalidInputError):
                raise error from None
            raise

    return call
