"""Filters whose SQL differs between the backends, with the same meaning on both."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from ctxbase.errors import InvalidInputError
from ctxbase.records import portable_json


def metadata_params(
    wanted: dict[str, Any], backend: str, *, name: str = "metadata"
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
        if backend == "postgresql":
            values[f"{name}_{i}_key"] = key
        else:
            values[f"{name}_{i}_path"] = f'$."{key}"'
        if backend == "postgresql" or value is not None:
            values[f"{name}_{i}_value"] = json.dumps(value)
    return values


def metadata_matches(
    column: Any, wanted: dict[str, Any], backend: str, *, name: str = "metadata"
) -> ColumnElement[bool]:
    """Rows whose JSON ``column`` has each top-level key of ``wanted`` equal to its value.

    Keys and values are bind parameters named ``{name}_…`` carrying their values (see
    :func:`metadata_params`): a statement compiled once runs again with other values.
    """
    values = metadata_params(wanted, backend, name=name)

    def bound(parameter: str) -> Any:
        return bindparam(parameter, values[parameter], type_=String())

    pairs = []
    for i, value in enumerate(wanted.values()):
        prefix = f"{name}_{i}"
        if backend == "postgresql":
            document = type_coerce(column, JSONB)
            pair = document[bound(f"{prefix}_key")] == cast(bound(f"{prefix}_value"), JSONB)
        elif value is None:  # json_extract cannot tell JSON null from a missing key
            pair = func.json_type(column, bound(f"{prefix}_path")) == literal_column("'null'")
        else:
            whole: Any = literal_column("'$'")
            pair = func.json_extract(column, bound(f"{prefix}_path")) == func.json_extract(
                bound(f"{prefix}_value"), whole
            )
        pairs.append(pair)
    return and_(*pairs)
