"""Value types and base classes of the records: text and JSON both backends store alike,
UTC timestamps, slugs, pages, and the strict base of every input model."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
)

MessageRole = Literal["user", "assistant", "system", "tool"]
INT32_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: A UTF-16 surrogate code point standing alone: JSON's "\ud800" escape parses to one,
#: but it is not a character, so no UTF-8 text (a PostgreSQL column, a response body,
#: an export) can hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` if both backends can store it: no NUL and no lone surrogate."""
    # PostgreSQL text cannot hold NUL; refusing it everywhere keeps the backends alike.
    if "\x00" in text:
        raise ValueError("text must not contain NUL (\\x00) characters")
    if not text.isascii() and _SURROGATE.search(text) is not None:
        raise ValueError("text must be valid Unicode (no lone surrogates such as \\ud800)")
    return text


def portable_json(value: Any) -> Any:
    """JSON both backends store identically: no NaN/Infinity, no NUL or lone surrogate in
    strings and keys, string keys, integers within 64 bits (the range SQL parameters and
    SQLite's JSON functions take)."""
    _walk_json(value)
    return value


def _walk_json(value: Any) -> None:
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("JSON integers must fit in 64 bits")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("JSON numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("JSON object keys must be strings")
            storable_text(key)
            _walk_json(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _walk_json(item)
    elif value is not None and not isinstance(value, bool | int | float):
        raise ValueError(f"{type(value).__name__} is not a JSON value")


def _utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


Text = Annotated[str, AfterValidator(storable_text)]
JSONValue = Annotated[Any, AfterValidator(portable_json)]
JSONObject = Annotated[dict[str, Any], AfterValidator(portable_json)]
Timestamp = Annotated[datetime, AfterValidator(_utc)]
Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Tokens = Annotated[int, Field(ge=0, le=INT32_MAX)]


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON, the measure of the metadata limit."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


class Record(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Input(BaseModel):
    """Base of every model a caller sends: an unknown field is an error that names it."""

    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back to get the next, None at the end."""

    items: list[T]
    next_cursor: str | None = None
