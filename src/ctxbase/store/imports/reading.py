"""Reading rows to import: each line or object checked against its kind's model, every
problem named by its line and field.

A problem is a dict in the shape of :func:`ctxbase.store.base.invalid_input`'s details
(``location``, ``message``, ``type``) plus the ``line`` and the row's ``kind``; its
location is ``["rows", <index in the call>, <field>…]``, so that over HTTP it points into
the request's ``rows``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ctxbase.errors import ConflictError, CtxbaseError, InvalidInputError, PayloadTooLargeError
from ctxbase.records import json_size
from ctxbase.records.imports import ROW_KINDS, ROW_MODELS, ImportRow
from ctxbase.records.values import _SURROGATE

#: Problems listed in an error's message; its details hold up to MAX_LISTED_DETAILS.
MAX_LISTED = 5
MAX_LISTED_DETAILS = 100
_TEXT_FIELDS = ("content", "thinking", "task")
_JSON_FIELDS = ("metadata", "provider_config", "value", "data")


@dataclass(frozen=True)
class Line:
    """One row as given: its number, where it is in the call's rows, and the row."""

    number: int
    index: int
    raw: Any


@dataclass(frozen=True)
class Parsed:
    number: int
    index: int
    row: ImportRow

    @property
    def kind(self) -> str:
        return self.row.kind

    def problem(self, field: str | None, message: str, kind: str = "invalid") -> dict[str, Any]:
        return problem(self.number, self.index, self.kind, field, message, kind)


class RowProblems(Exception):
    """Problems found in the rows of one batch (raised as a ctxbase error by the caller)."""

    def __init__(self, problems: list[dict[str, Any]], hint: str | None = None) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems
        self.hint = hint


def problem(
    number: int, index: int, kind: str | None, field: str | None, message: str, type_: str
) -> dict[str, Any]:
    location: list[Any] = ["rows", index, *([field] if field else [])]
    return {"line": number, "kind": kind, "location": location, "message": message, "type": type_}


def lines(rows: Iterable[Any] | str | bytes, first_line: int) -> Iterator[Line]:
    """The rows of ``rows`` with their numbers; blank lines count but are not rows."""
    if isinstance(rows, str | bytes):  # a whole document of JSON Lines
        rows = rows.splitlines()
    for index, raw in enumerate(rows):
        if isinstance(raw, str | bytes) and not raw.strip():
            continue
        yield Line(first_line + index, index, raw)


def parse(line: Line, limits: Limits) -> Parsed:
    """``line`` as its kind's row; RowProblems naming each bad field."""
    value = _object(line)
    kind = value.get("kind")
    if not isinstance(kind, str) or kind not in ROW_MODELS:
        said = "is missing" if kind is None else f"{shown(kind)} is not a kind"
        raise RowProblems(
            [
                problem(
                    line.number,
                    line.index,
                    None,
                    "kind",
                    f"{said}: one of {', '.join(ROW_KINDS)}",
                    "kind",
                )
            ]
        )
    try:
        row = ROW_MODELS[kind].model_validate(value)
    except ValidationError as error:
        raise RowProblems(
            [
                problem(
                    line.number,
                    line.index,
                    kind,
                    ".".join(shown(part) for part in e["loc"]) or None,
                    "unknown field" if e["type"] == "extra_forbidden" else str(e["msg"]),
                    e["type"],
                )
                for e in error.errors()
            ]
        ) from None
    parsed = Parsed(line.number, line.index, row)
    too_large = limits.problems(parsed)
    if too_large:
        raise RowProblems(too_large)
    return parsed


def _object(line: Line) -> Mapping[str, Any]:
    raw = line.raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(exclude_unset=True)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode()
        except UnicodeDecodeError:
            raise _not_an_object(line, "not UTF-8 text") from None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw.strip(), parse_constant=_no_constant)
        except json.JSONDecodeError as error:
            raise _not_an_object(line, f"not JSON: {error.msg} at column {error.colno}") from None
        except (ValueError, RecursionError) as error:
            raise _not_an_object(line, f"not JSON: {error}") from None
    if not isinstance(raw, Mapping):
        raise _not_an_object(line, "not a JSON object")
    return raw


def _not_an_object(line: Line, why: str) -> RowProblems:
    return RowProblems([problem(line.number, line.index, None, None, why, "json_invalid")])


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def shown(value: Any) -> str:
    """``value`` as text an error message can carry (a NUL or a lone surrogate escaped)."""
    text = str(value)
    if "\x00" in text or (not text.isascii() and _SURROGATE.search(text)):
        text = text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
    return text


@dataclass(frozen=True)
class Limits:
    """The store's limits on text and JSON, checked per row."""

    content_bytes: int
    json_bytes: int

    def problems(self, parsed: Parsed) -> list[dict[str, Any]]:
        found = []
        fields = vars(parsed.row)
        for field in _TEXT_FIELDS:
            text = fields.get(field) or ""
            # A character is at most 4 bytes of UTF-8: most texts need no encoding.
            if len(text) * 4 > self.content_bytes and len(text.encode()) > self.content_bytes:
                message = f"larger than {self.content_bytes} bytes"
                found.append(parsed.problem(field, message, "too_large"))
        for field in _JSON_FIELDS:
            value = fields.get(field)
            if value and json_size(value) > self.json_bytes:
                message = f"larger than {self.json_bytes} bytes of JSON"
                found.append(parsed.problem(field, message, "too_large"))
        return found


def rows_error(
    problems: list[dict[str, Any]], suffix: str = "", hint: str | None = None
) -> CtxbaseError:
    """One ctxbase error for ``problems``: 413 when all are over a limit, 409 when all
    conflict with stored rows, 422 otherwise; the first few are listed in its message."""
    listed = "; ".join(_describe(p) for p in problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    if more > 0:
        listed += f"; and {more} more"
    message = f"Cannot import: {listed}.{suffix}"
    details = problems[:MAX_LISTED_DETAILS]
    types = {p["type"] for p in problems}
    if types == {"too_large"}:
        return PayloadTooLargeError(message, details=details, hint=hint)
    if types == {"conflict"}:
        return ConflictError(message, details=details, hint=hint)
    return InvalidInputError(message, details=details, hint=hint)


def _describe(found: dict[str, Any]) -> str:
    kind = f" ({found['kind']})" if found.get("kind") else ""
    field = ".".join(str(p) for p in found["location"][2:])
    return f"line {found['line']}{kind}: {field + ': ' if field else ''}{found['message']}"
