"""Filters whose SQL differs between the backends, with the same meaning on both: the
checks are made here, each backend writes the SQL of one ``key == value`` pair."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, String, and_, bindparam

from ctxbase.errors import InvalidInputError
from ctxbase.records import portable_json

if TYPE_CHECKING:
    from ctxbase.db.backends.base import Backend


def metadata_params(
    wanted: dict[str, Any], backend: Backend, *, name: str = "metadata"
) -> dict[str, Any]:
    """The checked values of the bind parameters :func:`metadata_matches` uses."""
    if not isinstance(wanted, dict):
        raise InvalidInputError("a metadata filter must be a JSON object")
    try:
        portable_json(wanted)
    except ValueError as e:
        raise InvalidInputError(f"invalid metadata filter: {e}") from None
    if any('"' in key or "\\" in key for key in wanted):
        raise InvalidInputError('metadata filter keys must not contain " or \\')
    values: dict[str, Any] = {}
    for i, (key, value) in enumerate(wanted.items()):
        values.update(backend.metadata_bind_values(f"{name}_{i}", key, value))
    return values


def metadata_matches(
    column: Any, wanted: dict[str, Any], backend: Backend, *, name: str = "metadata"
) -> ColumnElement[bool]:
    """Rows whose JSON ``column`` has each top-level key of ``wanted`` equal to its value.

    Keys and values are bind parameters named ``{name}_…`` carrying their values (see
    :func:`metadata_params`): a statement compiled once runs again with other values.
    """
    values = metadata_params(wanted, backend, name=name)

    def bound(parameter: str) -> Any:
        return bindparam(parameter, values[parameter], type_=String())

    pairs = [
        backend.metadata_condition(column, f"{name}_{i}", value, bound)
        for i, value in enumerate(wanted.values())
    ]
    return and_(*pairs)
