"""Filters whose SQL differs between the backends, with the same meaning on both."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, func, literal, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from ctxbase.errors import InvalidInputError
from ctxbase.records import portable_json


def metadata_matches(column: Any, wanted: dict[str, Any], backend: str) -> ColumnElement[bool]:
    """Rows whose JSON ``column`` has each top-level key of ``wanted`` equal to its value."""
    if not isinstance(wanted, dict):
        raise InvalidInputError("a metadata filter must be a JSON object")
    try:
        portable_json(wanted)
    except ValueError as e:
        raise InvalidInputError(f"invalid metadata filter: {e}") from None
    if any('"' in key or "\\" in key for key in wanted):
        raise InvalidInputError('metadata filter keys must not contain " or \\')
    pairs = [_pair(column, key, value, backend) for key, value in wanted.items()]
    return and_(*pairs)


def _pair(column: Any, key: str, value: Any, backend: str) -> ColumnElement[bool]:
    if backend == "postgresql":
        document = type_coerce(column, JSONB)
        return document[key] == cast(literal(json.dumps(value)), JSONB)
    path = f'$."{key}"'
    if value is None:  # json_extract cannot tell JSON null from a missing key
        return func.json_type(column, path) == "null"
    return func.json_extract(column, path) == func.json_extract(literal(json.dumps(value)), "$")
