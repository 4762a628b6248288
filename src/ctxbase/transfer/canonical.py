"""One canonical rendering of rows, computed wherever it is cheapest.

Verification compares each table of the source and the target by row count and checksum.
A row's canonical form is its columns joined by ``0x1f``, each ``0x00`` for NULL or
``0x01`` followed by:

=============  ======================================================================
UUID           32 lowercase hex digits
timestamp      ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC
text, integer  the text, the decimal digits
float          the 8 bytes of the IEEE double, big-endian
boolean        ``1`` or ``0``
bytes          the bytes
vector         the float32 values, big-endian (pgvector's binary form without its header)
JSON           PostgreSQL's ``jsonb`` text: keys by length then bytes, ``", "`` and
               ``": "``, numbers as decimals (``1e2`` is ``100``); ``null`` as NULL
=============  ======================================================================

A row's hash is the first 8 bytes of the MD5 of that form, a signed 64-bit integer; a
table's checksum is the sum of its rows' hashes modulo 2**64. A sum ignores the order rows
come in, and unlike XOR a duplicated row changes it. (One 64-bit sum rather than two:
PostgreSQL then takes it in one aggregate over the table, with no subquery to hash each
row once, which halves the cost of verifying a table; a changed row still goes unnoticed
with a chance of one in 2**64.)

The form is computed three ways, pinned equal by the tests: in Python from values as
decoded for any backend (the reference); in Python from SQLite's stored values, skipping
decoding; and by PostgreSQL itself in SQL (with pgvector), so its rows never cross the
wire.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

import numpy as np
from sqlalchemy import JSON, Boolean, Column, Float, LargeBinary, String, Uuid
from sqlalchemy.types import TypeEngine

from ctxbase.db.types import EmbeddingVector, UTCDateTime

#: Renders a value; None means the value counts as NULL (a JSON ``null``).
Renderer = Callable[[Any], bytes | None]
#: Renders a column of values (one per row) into their parts: ``0x00``, or ``0x01`` and
#: the rendered value.
ColumnRenderer = Callable[[Sequence[Any]], list[bytes]]
_MASK = (1 << 64) - 1
_pack_double = struct.Struct(">d").pack
#: Parses JSON text, floats as Decimal (their written digits kept); made once, as
#: ``json.loads`` with options builds a decoder on every call.
_parse_json = json.JSONDecoder(parse_float=Decimal).decode


# --- JSON as PostgreSQL's jsonb prints it ------------------------------------------------


def _json_number(number: Decimal) -> str:
    if number.is_zero():
        number = abs(number)  # numeric has no negative zero
    return format(number, "f")


# Python escapes exactly what PostgreSQL escapes: quote, backslash, control characters
# (\b \f \n \r \t by name, the rest as lowercase \u00XX). This is the function
# ``json.dumps(text, ensure_ascii=False)`` calls for a string.
_json_string = encode_basestring


def _jsonb_key_order(key: str) -> tuple[int, str]:
    # By length in bytes, then by bytes: UTF-8 orders as code points do, so as str does.
    return len(key.encode()), key


def _jsonb_object(value: dict[str, Any]) -> str:
    keys = sorted(value, key=_jsonb_key_order) if len(value) > 1 else value
    return "{" + ", ".join([f"{_json_string(k)}: {jsonb_text(value[k])}" for k in keys]) + "}"


def _jsonb_array(value: list[Any]) -> str:
    return "[" + ", ".join([jsonb_text(item) for item in value]) + "]"


#: What the parser makes, by exact type (bool apart from int); anything else is looked at
#: more closely below.
_JSONB_BY_TYPE: dict[type, Callable[[Any], str]] = {
    dict: _jsonb_object,
    list: _jsonb_array,
    str: _json_string,
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
    Decimal: _json_number,
}


def jsonb_text(value: Any) -> str:
    """``value`` (parsed JSON; numbers as int, float or Decimal) as ``jsonb::text`` shows it."""
    render = _JSONB_BY_TYPE.get(type(value))
    if render is not None:
        return render(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_number(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return _json_number(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(jsonb_text(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=_jsonb_key_order) if len(value) > 1 else list(value)
        return "{" + ", ".join(f"{_json_string(k)}: {jsonb_text(value[k])}" for k in keys) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def render_json_text(text: str | bytes | int | float) -> bytes | None:
    """Stored JSON text (SQLite) in canonical form; numbers keep their written digits.

    SQLite gives JSON columns numeric affinity, so a document that is a number comes back
    as an int or a float. A JSON ``null`` counts as NULL, as SQLAlchemy reads both."""
    if isinstance(text, int | float):
        return jsonb_text(text).encode()
    value = _parse_json(text) if isinstance(text, str) else json.loads(text, parse_float=Decimal)
    return None if value is None else jsonb_text(value).encode()


# --- from decoded values -------------------------------------------------------------------


def render_uuid(value: uuid.UUID) -> bytes:
    return value.hex.encode()


def render_datetime(value: datetime) -> bytes:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds").encode()


def render_text(value: str) -> bytes:
    return value.encode()


def render_int(value: int) -> bytes:
    return str(int(value)).encode()


def render_float(value: float) -> bytes:
    return _pack_double(value)


def render_bool(value: bool) -> bytes:
    return b"1" if value else b"0"


def render_bytes(value: bytes) -> bytes:
    return bytes(value)


def render_vector(value: Any) -> bytes:
    return np.asarray(value, dtype=">f4").tobytes()


def render_json(value: Any) -> bytes:
    return jsonb_text(value).encode()


def decoded_renderer(sql_type: TypeEngine[Any]) -> Renderer:
    """How a decoded value of ``sql_type`` is rendered."""
    for kind, renderer in (
        (EmbeddingVector, render_vector),
        (UTCDateTime, render_datetime),
        (JSON, render_json),
        (Uuid, render_uuid),
        (String, render_text),
        (Boolean, render_bool),
        (Float, render_float),
        (LargeBinary, render_bytes),
    ):
        if isinstance(sql_type, kind):
            return renderer
    return render_int


# --- from SQLite's stored values -----------------------------------------------------------


def _sqlite_datetime(value: str) -> bytes:
    if len(value) == 26:  # SQLAlchemy's storage format, already canonical
        return value.encode()
    parsed = datetime.fromisoformat(value)  # naive: UTC; with an offset: that instant
    return render_datetime(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _sqlite_vector(value: bytes) -> bytes:
    return np.frombuffer(value, dtype="<f4").astype(">f4").tobytes()


def sqlite_renderer(sql_type: TypeEngine[Any]) -> Renderer:
    """How a value of ``sql_type`` as SQLite stores it is rendered, without decoding it."""
    if isinstance(sql_type, EmbeddingVector):
        return _sqlite_vector
    if isinstance(sql_type, UTCDateTime):
        return _sqlite_datetime
    if isinstance(sql_type, JSON):
        return render_json_text
    if isinstance(sql_type, Uuid | String):
        return render_text
    if isinstance(sql_type, Boolean):
        return render_bool
    if isinstance(sql_type, Float):
        return lambda value: _pack_double(float(value))
    if isinstance(sql_type, LargeBinary):
        return render_bytes
    return render_int


# --- whole columns at a time --------------------------------------------------------------


def _part(render: Renderer, value: Any) -> bytes:
    if value is None:
        return b"\x00"
    rendered = render(value)
    return b"\x00" if rendered is None else b"\x01" + rendered


def column_renderer(render: Renderer) -> ColumnRenderer:
    """Renders a column value by value with ``render``."""

    def column(values: Sequence[Any]) -> list[bytes]:
        return [_part(render, value) for value in values]

    return column


def _encoded_column(values: Sequence[Any]) -> list[bytes]:
    """Text as stored (SQLite's UUIDs are their hex digits): its UTF-8 bytes."""
    return [b"\x00" if value is None else b"\x01" + value.encode() for value in values]


def _sqlite_datetime_column(values: Sequence[Any]) -> list[bytes]:
    return [
        b"\x00"
        if value is None
        else b"\x01" + (value.encode() if len(value) == 26 else _sqlite_datetime(value))
        for value in values
    ]


def swapped_vectors(values: Sequence[Any], prefix: bytes) -> list[bytes] | None:
    """SQLite's vectors (little-endian float32) as big-endian bytes after ``prefix``,
    swapped in one numpy call for the whole column; None unless they are all bytes of
    one size, a multiple of 4 (as they are in all but odd cases)."""
    size = len(values[0]) if values and isinstance(values[0], bytes) else 0
    if not size or size % 4 or any(not isinstance(v, bytes) or len(v) != size for v in values):
        return None
    swapped = _swapped(values)
    return [prefix + swapped[start : start + size] for start in range(0, len(swapped), size)]


#: The column last swapped, and its swap: a page's vectors are encoded for COPY and then
#: hashed from one column object (``Page.columns``), and swapped once for both. Only a
#: tuple is remembered: it cannot change behind the cache's back.
_last_swap: tuple[tuple[Any, ...] | None, bytes] = (None, b"")


def _swapped(values: Sequence[Any]) -> bytes:
    global _last_swap
    last, swapped = _last_swap  # one read: another thread may replace it meanwhile
    if last is not values:
        swapped = np.frombuffer(b"".join(values), dtype="<f4").astype(">f4").tobytes()
        if isinstance(values, tuple):
            _last_swap = (values, swapped)
    return swapped


def _sqlite_vector_column(values: Sequence[Any]) -> list[bytes]:
    swapped = swapped_vectors(values, b"\x01")
    return swapped if swapped is not None else [_part(_sqlite_vector, v) for v in values]


def _sqlite_json_column(values: Sequence[Any]) -> list[bytes]:
    """Stored JSON texts parsed in one call, as the items of one array (a parse per
    document costs more in the call than in the parsing), then rendered one by one.

    Valid documents joined by commas parse to exactly themselves. Malformed ones may not
    (``[1`` and ``2]`` make one item), and are parsed one by one when the count is off or
    the array does not parse; the rare ones that still combine into the right count get
    a wrong digest, harmlessly: a row the target cannot store is left out of the sum."""
    texts = [value for value in values if value is not None]
    parsed = None
    if texts and all(isinstance(text, str) for text in texts):
        with contextlib.suppress(ValueError):  # some document is malformed
            parsed = _parse_json("[" + ",".join(texts) + "]")
    if parsed is None or len(parsed) != len(texts):
        return _json_parts(values)
    documents = iter(parsed)
    parts = []
    for value in values:
        document = None if value is None else next(documents)
        parts.append(b"\x00" if document is None else b"\x01" + jsonb_text(document).encode())
    return parts


_json_parts = column_renderer(render_json_text)


def sqlite_column_renderer(sql_type: TypeEngine[Any]) -> ColumnRenderer:
    """Like :func:`sqlite_renderer`, for a whole column at once."""
    if isinstance(sql_type, EmbeddingVector):
        return _sqlite_vector_column
    if isinstance(sql_type, JSON):
        return _sqlite_json_column
    if isinstance(sql_type, UTCDateTime):
        return _sqlite_datetime_column
    if isinstance(sql_type, Uuid | String) and not isinstance(sql_type, JSON):
        return _encoded_column
    return column_renderer(sqlite_renderer(sql_type))


# --- checksums -----------------------------------------------------------------------------


class Checksum:
    """Row count and checksum of a table, accumulated batch by batch."""

    def __init__(self) -> None:
        self.rows = 0
        self._sum = 0

    def add_digest(self, digest: bytes) -> None:
        self.rows += 1
        self._sum += _row_hash(digest)

    def add_digests(self, digests: Sequence[bytes]) -> None:
        """Add many digests at once: numpy sums their hashes modulo 2**64, as the checksum is."""
        if not digests:
            return
        hashes = np.frombuffer(b"".join(digests), dtype=">u8")[::2]
        self.add_sums(len(digests), int(hashes.sum(dtype=np.uint64)))

    def remove(self, digest: bytes | None) -> None:
        """Take out a row added before (by its digest; None: a row counted without one)."""
        self.rows -= 1
        if digest is not None:
            self._sum -= _row_hash(digest)

    def add_sums(self, rows: int, total: int) -> None:
        self.rows += rows
        self._sum += total

    @property
    def hex(self) -> str:
        return f"{self._sum & _MASK:016x}"

    def to_json(self) -> dict[str, int]:
        return {"rows": self.rows, "sum": self._sum & _MASK}

    @classmethod
    def from_json(cls, value: dict[str, int]) -> Checksum:
        # "high": how checkpoints written before the checksum was one sum spelled it (the
        # same sum of the digests' first halves).
        checksum = cls()
        checksum.add_sums(value["rows"], value["sum"] if "sum" in value else value["high"])
        return checksum


def _row_hash(digest: bytes) -> int:
    """A row's hash: the first 8 bytes of its MD5 digest, as a signed integer."""
    return int.from_bytes(digest[:8], "big", signed=True)


#: What rendering a value that does not have its column's type raises.
RENDER_ERRORS = (ValueError, TypeError, AttributeError, OverflowError)


class RowRenderer:
    """Canonical forms of rows given as value tuples: one renderer per column, applied a
    column at a time (one loop per column, not a call per value, on the fast paths)."""

    def __init__(
        self, renderers: Sequence[Renderer], columns: Sequence[ColumnRenderer] | None = None
    ) -> None:
        self.renderers = list(renderers)
        self.columns = list(columns or [column_renderer(r) for r in self.renderers])

    @classmethod
    def for_decoded(cls, columns: Iterable[Column[Any]]) -> RowRenderer:
        return cls([decoded_renderer(c.type) for c in columns])

    @classmethod
    def for_sqlite(cls, columns: Iterable[Column[Any]]) -> RowRenderer:
        types = [c.type for c in columns]
        return cls([sqlite_renderer(t) for t in types], [sqlite_column_renderer(t) for t in types])

    def digests(
        self, rows: Sequence[Sequence[Any]], columns: Sequence[Sequence[Any]] | None = None
    ) -> list[bytes]:
        """The MD5 of each row's canonical form (``columns``: the rows' values a column at
        a time, when the caller has them already)."""
        if not rows:
            return []
        by_column = zip(*rows, strict=True) if columns is None else columns
        rendered = [render(column) for render, column in zip(self.columns, by_column, strict=True)]
        md5, join = hashlib.md5, b"\x1f".join
        return [
            md5(join(parts), usedforsecurity=False).digest()
            for parts in zip(*rendered, strict=True)
        ]

    def digests_or_none(
        self, rows: Sequence[Sequence[Any]], columns: Sequence[Sequence[Any]] | None = None
    ) -> list[bytes | None]:
        """Like :meth:`digests`, with None for a row that cannot be rendered (bad JSON)."""
        try:
            return list(self.digests(rows, columns))
        except RENDER_ERRORS:
            return [self._digest_or_none(row) for row in rows]

    def _digest_or_none(self, row: Sequence[Any]) -> bytes | None:
        try:
            parts = [
                _part(render, value) for render, value in zip(self.renderers, row, strict=True)
            ]
        except RENDER_ERRORS:
            return None
        return hashlib.md5(b"\x1f".join(parts), usedforsecurity=False).digest()

    def add_to(self, checksum: Checksum, rows: Sequence[Sequence[Any]]) -> None:
        checksum.add_digests(self.digests(rows))
