"""PostgreSQL in a transfer: binary ``COPY`` in, checksums computed by the server.

``COPY … FROM STDIN (FORMAT BINARY)`` is several times faster than ``INSERT``. Most values
go to psycopg's binary dumpers for the column's own type. Some are handed over as the very
bytes the server's binary input function reads (sent as ``bytea``, which psycopg passes
through untouched), so nothing has to be registered on the connection and SQLite's stored
values need no decoding: a UUID's 16 bytes, ``jsonb`` (a version byte, then the JSON text),
pgvector's ``vector`` (dimensions, a spare int16, big-endian float32s).

From an SQLite source, whole pages are turned into the binary ``COPY`` stream column by
column (:class:`BinaryBlockEncoder`): a loop per column rather than dumper calls per
value, vectors byte-swapped in one numpy call per page. A page it cannot encode (a value
not of its column's type) goes through psycopg's dumpers row by row, as before, and from
there to the row-by-row path that logs the bad row.

Checksums: the server renders each row's canonical form (see ``canonical``) and sums the
halves of its MD5, so verifying a table moves three numbers, not the table.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any, cast

import numpy as np
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    Uuid,
    text,
)
from sqlalchemy.types import TypeEngine

from ctxbase.db.types import VECTOR_STORAGE_ATTR, EmbeddingVector, UTCDateTime, as_utc
from ctxbase.transfer.canonical import Checksum, swapped_vectors
from ctxbase.transfer.reading import Page

_BYTEA_OID = 17
Encoder = Callable[[Any], Any] | None
_vector_header = struct.Struct(">hh").pack


def _checked_vector(value: Any, dtype: str) -> np.ndarray:
    array = np.asarray(value, dtype=dtype)
    if array.ndim != 1 or array.size == 0:
        raise ValueError("an embedding vector must be a non-empty 1-D sequence of numbers")
    return array


def encode_jsonb(value: Any) -> bytes:
    return b"\x01" + json.dumps(value, ensure_ascii=False).encode()


def encode_pgvector(value: Any) -> bytes:
    array = _checked_vector(value, ">f4")
    return _vector_header(array.size, 0) + array.tobytes()


def encode_vector_bytes(value: Any) -> bytes:
    return _checked_vector(value, "<f4").tobytes()


def _sqlite_jsonb(value: str | int | float) -> bytes:
    # SQLite gives a JSON column numeric affinity: a document that is a number comes back
    # as one (its text was written by Python, so repr() gives it back).
    text = value if isinstance(value, str) else repr(value)
    return b"\x01" + text.encode()


def _sqlite_pgvector(value: bytes) -> bytes:
    if len(value) % 4 or not value:
        raise ValueError("an embedding vector must be a whole number of float32 values")
    return _vector_header(len(value) // 4, 0) + np.frombuffer(value, "<f4").astype(">f4").tobytes()


def _sqlite_datetime(value: str) -> datetime:
    # Naive text is UTC; text with an offset (another tool wrote it) is that instant.
    return as_utc(datetime.fromisoformat(value))


# --- SQLite pages as one binary COPY block -----------------------------------------------

#: Column encoder: a column of SQLite's stored values (one per row) -> COPY fields, each
#: its length (int32) and bytes, or -1 for NULL.
FieldEncoder = Callable[[Sequence[Any]], list[bytes]]
_NULL_FIELD = b"\xff\xff\xff\xff"
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_COPY_TRAILER = b"\xff\xff"
_int16 = struct.Struct(">h").pack
_int32 = struct.Struct(">i").pack
_int64 = struct.Struct(">q").pack
_float4 = struct.Struct(">f").pack
_float8 = struct.Struct(">d").pack
_POSTGRES_EPOCH = datetime(2000, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_from_iso = datetime.fromisoformat


def _fixed_fields(size: int, encode: Callable[[Any], bytes]) -> FieldEncoder:
    prefix = _int32(size)

    def fields(values: Sequence[Any]) -> list[bytes]:
        return [_NULL_FIELD if v is None else prefix + encode(v) for v in values]

    return fields


def _text_fields(values: Sequence[Any]) -> list[bytes]:
    return [_NULL_FIELD if v is None else _int32(len(b := v.encode())) + b for v in values]


def _bytes_fields(values: Sequence[Any]) -> list[bytes]:
    return [_NULL_FIELD if v is None else _int32(len(v)) + bytes(v) for v in values]


def _jsonb_fields(values: Sequence[Any]) -> list[bytes]:
    # SQLite's numeric affinity may return a document that is a number as one.
    return [
        _NULL_FIELD
        if v is None
        else _int32(len(b := (v if isinstance(v, str) else repr(v)).encode()) + 1) + b"\x01" + b
        for v in values
    ]


def _timestamp(value: str) -> bytes:
    """Stored text (naive, UTC) -> microseconds since 2000-01-01, as the server takes them."""
    moment = _from_iso(value)
    if moment.tzinfo is not None:  # as `_sqlite_datetime`: that instant, in UTC
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return _int64((moment - _POSTGRES_EPOCH) // _MICROSECOND)


def _pgvector_fields(values: Sequence[Any]) -> list[bytes]:
    """pgvector's binary form, swapped in one numpy call when all vectors have one size."""
    size = len(values[0]) if values and isinstance(values[0], bytes) else 0
    swapped = swapped_vectors(values, _int32(size + 4) + _vector_header(size // 4, 0))
    if swapped is not None:
        return swapped
    return [_NULL_FIELD if v is None else _int32(len(b := _sqlite_pgvector(v))) + b for v in values]


def _field_encoder(sql_type: TypeEngine[Any], target_type: str) -> FieldEncoder | None:
    """How a column of SQLite's stored values of ``sql_type`` becomes COPY fields of the
    target's ``target_type``; None when there is no block encoding for the pair."""
    if isinstance(sql_type, EmbeddingVector):
        if target_type == "vector":
            return _pgvector_fields
        return _bytes_fields if target_type == "bytea" else None
    if isinstance(sql_type, JSON):
        return _jsonb_fields if target_type == "jsonb" else None
    if isinstance(sql_type, UTCDateTime):
        if target_type in ("timestamp with time zone", "timestamp without time zone"):
            return _fixed_fields(8, _timestamp)
        return None
    if isinstance(sql_type, Uuid):
        return _fixed_fields(16, bytes.fromhex) if target_type == "uuid" else None
    if isinstance(sql_type, Boolean):
        return (
            _fixed_fields(1, lambda v: b"\x01" if v else b"\x00")
            if target_type == "boolean"
            else None
        )
    if isinstance(sql_type, Float):
        if target_type == "double precision":
            return _fixed_fields(8, lambda v: _float8(float(v)))
        return _fixed_fields(4, lambda v: _float4(float(v))) if target_type == "real" else None
    if isinstance(sql_type, Integer):
        packs = {"smallint": (2, _int16), "integer": (4, _int32), "bigint": (8, _int64)}
        return _fixed_fields(*packs[target_type]) if target_type in packs else None
    if isinstance(sql_type, String):
        return _text_fields if target_type in ("text", "character varying", "character") else None
    if isinstance(sql_type, LargeBinary):
        return _bytes_fields if target_type == "bytea" else None
    return None


@dataclass(frozen=True)
class CopyBlock:
    """A page as one binary COPY stream, signature to trailer."""

    data: bytes


class BinaryBlockEncoder:
    """Encodes pages of SQLite's stored values into binary COPY blocks, column by column."""

    def __init__(self, fields: list[FieldEncoder]) -> None:
        self.fields = fields
        self.header = _int16(len(fields))

    @classmethod
    def for_columns(
        cls, columns: Sequence[Column[Any]], target_types: dict[str, str]
    ) -> BinaryBlockEncoder | None:
        fields = [_field_encoder(c.type, target_types[c.name]) for c in columns]
        if any(f is None for f in fields):
            return None
        return cls(cast(list[FieldEncoder], fields))

    def encode(self, columns: Sequence[Sequence[Any]]) -> CopyBlock:
        """A page given a column at a time. Raises (ValueError, TypeError,
        AttributeError, struct.error…) when a value does not have its column's type."""
        fields = [encode(column) for encode, column in zip(self.fields, columns, strict=True)]
        rows_out = map(b"".join, zip(repeat(self.header), *fields))
        return CopyBlock(b"".join([_COPY_SIGNATURE, *rows_out, _COPY_TRAILER]))


def _decoded_encoder(sql_type: TypeEngine[Any], pgvector: bool) -> tuple[Encoder, bool]:
    """(encoder, sent as bytea) for a value decoded by SQLAlchemy."""
    if isinstance(sql_type, EmbeddingVector):
        return (encode_pgvector if pgvector else encode_vector_bytes), True
    if isinstance(sql_type, JSON):
        return encode_jsonb, True
    return None, False


def _sqlite_encoder(sql_type: TypeEngine[Any], pgvector: bool) -> tuple[Encoder, bool]:
    """(encoder, sent as bytea) for a value as SQLite stores it."""
    if isinstance(sql_type, EmbeddingVector):
        return (_sqlite_pgvector if pgvector else bytes), True
    if isinstance(sql_type, JSON):
        return _sqlite_jsonb, True
    if isinstance(sql_type, Uuid):
        return bytes.fromhex, True
    if isinstance(sql_type, UTCDateTime):
        return _sqlite_datetime, False
    if isinstance(sql_type, Boolean):
        return bool, False
    if isinstance(sql_type, Float):
        return float, False
    return None, False


class PostgresCopyWriter:
    """Writes pages into one table with ``COPY … FROM STDIN (FORMAT BINARY)``."""

    def __init__(
        self,
        connection: Connection,
        table: Table,
        columns: Sequence[Column[Any]],
        *,
        from_sqlite: bool,
    ) -> None:
        described = connection.execute(
            text(
                "SELECT attname, atttypid::int, format_type(atttypid, NULL) FROM pg_attribute"
                " WHERE attrelid = to_regclass(:table) AND attnum > 0 AND NOT attisdropped"
            ),
            {"table": table.name},
        ).all()
        type_oids: dict[str, int] = {name: oid for name, oid, _ in described}
        pgvector = getattr(connection.dialect, VECTOR_STORAGE_ATTR, "bytes") == "pgvector"
        choose = _sqlite_encoder if from_sqlite else _decoded_encoder
        self.from_sqlite = from_sqlite
        self.oids: list[int] = []
        self.encoders: list[Encoder] = []
        for column in columns:
            encoder, as_bytes = choose(column.type, pgvector)
            self.encoders.append(encoder)
            self.oids.append(_BYTEA_OID if as_bytes else type_oids[column.name])
        self.statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
        )
        self.block: BinaryBlockEncoder | None = None
        if from_sqlite:
            target_types = {name: type_name for name, _, type_name in described}
            self.block = BinaryBlockEncoder.for_columns(columns, target_types)

    def prepare(self, page: Page) -> CopyBlock | list[tuple[Any, ...]]:
        """The page as COPY takes it (done while the previous page is written)."""
        if self.block is not None:
            try:
                return self.block.encode(page.columns)
            except Exception:  # some value is not of its column's type: the careful way
                pass
        return self.encode_rows(page.raw if self.from_sqlite else page.decoded_values())

    def encode_rows(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Rows of values (as SQLAlchemy decodes them, or as SQLite stores them with
        ``from_sqlite``), in the columns' order, as :meth:`write` takes them."""
        columns = list(zip(*rows, strict=True))
        for position, encode in enumerate(self.encoders):
            if encode is not None:
                columns[position] = tuple(
                    None if value is None else encode(value) for value in columns[position]
                )
        return list(zip(*columns, strict=True))

    def write(self, connection: Connection, prepared: CopyBlock | list[tuple[Any, ...]]) -> None:
        raw = cast(psycopg.Connection[Any], connection.connection.dbapi_connection)
        cursor = raw.cursor()
        if isinstance(prepared, CopyBlock):
            with cursor, cursor.copy(self.statement) as copy:
                copy.write(prepared.data)
            return
        # A writer thread sends while this one encodes: the server parses meanwhile.
        with cursor, cursor.copy(self.statement, writer=QueuedLibpqWriter(cursor)) as copy:
            copy.set_types(self.oids)
            for row in prepared:
                copy.write_row(row)


# --- checksums ---------------------------------------------------------------------------


def _canonical_sql(column: Column[Any], quoted: str) -> str:
    """SQL rendering ``column`` (already quoted) in canonical form, as bytea."""
    sql_type = column.type
    if isinstance(sql_type, EmbeddingVector):
        return f"substring(vector_send({quoted}) from 5)"
    if isinstance(sql_type, UTCDateTime):
        rendered = f"to_char({quoted} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
    elif isinstance(sql_type, JSON):
        rendered = f"{quoted}::text"
    elif isinstance(sql_type, Uuid):
        rendered = f"encode(uuid_send({quoted}), 'hex')"
    elif isinstance(sql_type, String):
        rendered = quoted
    elif isinstance(sql_type, Boolean):
        rendered = f"CASE WHEN {quoted} THEN '1' ELSE '0' END"
    elif isinstance(sql_type, Float):
        return f"float8send({quoted})"
    elif isinstance(sql_type, LargeBinary):
        return quoted
    else:
        rendered = f"{quoted}::text"
    return f"convert_to({rendered}, 'UTF8')"


def can_checksum_in_sql(connection: Connection, columns: Sequence[Column[Any]]) -> bool:
    """Vectors stored as bytes are little-endian; only pgvector's are rendered in SQL."""
    pgvector = getattr(connection.dialect, VECTOR_STORAGE_ATTR, "bytes") == "pgvector"
    return pgvector or not any(isinstance(c.type, EmbeddingVector) for c in columns)


def sql_checksum(
    connection: Connection, table: Table, key: Column[Any], excluded: Sequence[Any] = ()
) -> Checksum:
    """Row count and checksum of ``table`` computed by the server, less ``excluded`` keys."""
    preparer = connection.dialect.identifier_preparer
    parts = []
    for column in table.columns:
        quoted = preparer.quote(column.name)
        value = f"'\\x01'::bytea || {_canonical_sql(column, quoted)}"
        is_null = f"{quoted} IS NULL" if column.nullable else None
        if isinstance(column.type, JSON):  # a JSON null counts as NULL (see canonical)
            is_null = f"{quoted} IS NULL OR {quoted} = 'null'::jsonb"
        if is_null:  # (a column that cannot hold NULL needs no test)
            value = f"CASE WHEN {is_null} THEN '\\x00'::bytea ELSE {value} END"
        parts.append(value)
    row = " || '\\x1f'::bytea || ".join(parts)
    where = f"WHERE NOT ({preparer.quote(key.name)} = ANY(:excluded))" if excluded else ""
    # One aggregate straight over the table: a subquery (needed to use one hash twice)
    # doubled the cost of the whole query.
    statement = text(
        f"SELECT count(*), coalesce(sum(('x' || md5({row}))::bit(64)::bigint), 0)"
        f" FROM {preparer.quote(table.name)} {where}"
    )
    params = {"excluded": list(excluded)} if excluded else {}
    rows, total = connection.execute(statement, params).one()
    checksum = Checksum()
    checksum.add_sums(int(rows), int(total))
    return checksum
