"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, DateTime, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from ctxbase.db.backends import backend_class

#: JSON documents; JSONB on PostgreSQL so they can be indexed and compared.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")

#: Attribute set on an engine's dialect saying how that database stores vectors:
#: "pgvector" (a pgvector ``vector`` column) or "bytes" (float32 little-endian BLOB/bytea).
VECTOR_STORAGE_ATTR = "ctxbase_vector_storage"


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC, timezone-aware; a naive value is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zone type and hands back naive values; this type normalises both
    directions so records compare equal whichever backend they came from.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if _naive_timestamps(dialect) else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    # Where timestamps are naive text (SQLite) the two directions are written out in one
    # function each: SQLAlchemy's chain (this type's step, then SQLite's formatting or
    # regex parsing) costs more than an indexed read. The stored text is the one
    # SQLAlchemy writes: "YYYY-MM-DD HH:MM:SS.ffffff", always with microseconds, so text
    # order is time order.

    def bind_processor(self, dialect: Dialect) -> Any:
        if not _naive_timestamps(dialect):
            return super().bind_processor(dialect)
        return _sqlite_timestamp_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if not _naive_timestamps(dialect):
            return super().result_processor(dialect, coltype)
        generic = super().result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            if isinstance(value, str):
                return as_utc(datetime.fromisoformat(value))
            return generic(value) if generic is not None else value

        return process


def _naive_timestamps(dialect: Dialect) -> bool:
    return backend_class(dialect.name).naive_timestamps


def _sqlite_timestamp_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class EmbeddingVector(TypeDecorator[np.ndarray]):
    """An embedding vector, returned as a float32 numpy array on every backend.

    The schema declares it as binary; on PostgreSQL with pgvector the migration creates a
    pgvector ``vector`` column instead (see ``migrations``), and the database records that
    choice on its engine's dialect so values are sent in the form the column expects.
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if getattr(dialect, VECTOR_STORAGE_ATTR, "bytes") == "pgvector":
            from ctxbase.db.vectors.wire import BinaryVECTOR

            return dialect.type_descriptor(BinaryVECTOR())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        array = np.asarray(value, dtype="<f4")
        if array.ndim != 1 or array.size == 0:
            raise ValueError("an embedding vector must be a non-empty 1-D sequence of numbers")
        if getattr(dialect, VECTOR_STORAGE_ATTR, "bytes") == "pgvector":
            return array
        return array.tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            return np.frombuffer(bytes(value), dtype="<f4").astype(np.float32)
        return np.asarray(value, dtype=np.float32)  # parsed by pgvector's column type
