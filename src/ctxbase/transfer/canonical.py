"""A canonical rendering of rows, the same whichever backend they were read from.

Verification compares tables by count and by a checksum: the sum, modulo 2**128, of a
128-bit hash of each row's canonical rendering. A sum does not depend on the order rows
are read in, and, unlike XOR, a duplicated row changes it.

Renderings: UUIDs as 32 hex digits, timestamps as UTC ISO 8601 with microseconds, JSON with
sorted keys and integral floats written as integers (PostgreSQL's ``jsonb`` keeps numbers
as decimals, so ``1.0`` may come back as ``1``), floats by ``repr`` (both backends keep
IEEE doubles), vectors as little-endian float32 bytes (pgvector and the BLOB form hold
the same float32 values).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, Column, LargeBinary, Table
from sqlalchemy.types import TypeEngine

from ctxbase.db.types import EmbeddingVector, UTCDateTime

Renderer = Callable[[Any], bytes]
CHECKSUM_MODULUS = 1 << 128


def _json_normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return int(value)
    if isinstance(value, dict):
        return {k: _json_normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_normal(v) for v in value]
    return value


def render_json(value: Any) -> bytes:
    text = json.dumps(
        _json_normal(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return text.encode()


def render_vector(value: Any) -> bytes:
    return np.asarray(value, dtype="<f4").tobytes()


def render_datetime(value: datetime) -> bytes:
    return value.astimezone(UTC).isoformat(timespec="microseconds").encode()


def render_scalar(value: Any) -> bytes:
    if isinstance(value, uuid.UUID):
        return value.hex.encode()
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


def renderer_for(sql_type: TypeEngine[Any]) -> Renderer:
    if isinstance(sql_type, EmbeddingVector):
        return render_vector
    if isinstance(sql_type, UTCDateTime):
        return render_datetime
    if isinstance(sql_type, JSON) or isinstance(getattr(sql_type, "impl", None), JSON):
        return render_json
    if isinstance(sql_type, LargeBinary):
        return render_scalar
    return render_scalar


class RowHasher:
    """Hashes rows of one table given as value sequences in the table's column order."""

    def __init__(self, table: Table, columns: Sequence[Column[Any]] | None = None) -> None:
        self.renderers = [renderer_for(c.type) for c in (columns or list(table.columns))]

    def row_hash(self, values: Sequence[Any]) -> int:
        parts = [
            b"\x00" if value is None else b"\x01" + render(value)
            for render, value in zip(self.renderers, values, strict=True)
        ]
        digest = hashlib.blake2b(b"\x1f".join(parts), digest_size=16).digest()
        return int.from_bytes(digest, "big")

    def checksum(self, rows: Sequence[Sequence[Any]]) -> int:
        return sum(self.row_hash(row) for row in rows) % CHECKSUM_MODULUS


def combine(*checksums: int) -> int:
    return sum(checksums) % CHECKSUM_MODULUS


def as_hex(checksum: int) -> str:
    return f"{checksum:032x}"
