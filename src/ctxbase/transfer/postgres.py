"""PostgreSQL as a transfer target: binary ``COPY``, several times faster than ``INSERT``.

Values arrive decoded (UUIDs, aware datetimes, JSON documents, numpy vectors). Most go to
psycopg's binary dumpers for the column's own type. Two are encoded here, as the bytes the
server's binary input functions read: ``jsonb`` (a version byte, then the JSON text) and
pgvector's ``vector`` (dimensions and a spare int16, then big-endian float32s), so no
adapter has to be registered on the connection.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from psycopg import sql
from sqlalchemy import Column, Connection, Table, text

from ctxbase.db.types import VECTOR_STORAGE_ATTR, EmbeddingVector

_BYTEA_OID = 17
Encoder = Callable[[Any], Any] | None


def encode_jsonb(value: Any) -> bytes:
    return b"\x01" + json.dumps(value, ensure_ascii=False).encode()


def encode_pgvector(value: Any) -> bytes:
    array = np.asarray(value, dtype=">f4")
    if array.ndim != 1 or array.size == 0:
        raise ValueError("an embedding vector must be a non-empty 1-D sequence of numbers")
    return struct.pack(">hh", array.size, 0) + array.tobytes()


def encode_vector_bytes(value: Any) -> bytes:
    array = np.asarray(value, dtype="<f4")
    if array.ndim != 1 or array.size == 0:
        raise ValueError("an embedding vector must be a non-empty 1-D sequence of numbers")
    return array.tobytes()


class PostgresCopyWriter:
    """Writes batches into one table with ``COPY … FROM STDIN (FORMAT BINARY)``."""

    def __init__(self, connection: Connection, table: Table, columns: Sequence[Column[Any]]):
        type_oids = {
            name: (oid, type_name)
            for name, oid, type_name in connection.execute(
                text(
                    "SELECT attname, atttypid::int, format_type(atttypid, NULL) FROM pg_attribute"
                    " WHERE attrelid = to_regclass(:table) AND attnum > 0 AND NOT attisdropped"
                ),
                {"table": table.name},
            )
        }
        pgvector = getattr(connection.dialect, VECTOR_STORAGE_ATTR, "bytes") == "pgvector"
        self.oids: list[int] = []
        self.encoders: list[Encoder] = []
        for column in columns:
            oid, type_name = type_oids[column.name]
            if type_name == "jsonb":
                self.oids.append(_BYTEA_OID)
                self.encoders.append(encode_jsonb)
            elif isinstance(column.type, EmbeddingVector):
                self.oids.append(_BYTEA_OID)
                self.encoders.append(encode_pgvector if pgvector else encode_vector_bytes)
            else:
                self.oids.append(oid)
                self.encoders.append(None)
        self.statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
        )

    def write(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        encoders = self.encoders
        raw = connection.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(self.statement) as copy:  # type: ignore[attr-defined]
            copy.set_types(self.oids)
            for row in rows:
                copy.write_row(
                    [
                        value if encode is None or value is None else encode(value)
                        for encode, value in zip(encoders, row, strict=True)
                    ]
                )
