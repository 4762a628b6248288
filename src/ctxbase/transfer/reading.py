"""Reading a table in key order, page by page, decoding each row on its own.

Rows are fetched raw from the driver and decoded with the very type processors SQLAlchemy
would apply, one row at a time: a row the source cannot decode (JSON that does not parse,
a vector of the wrong size) becomes an error for that row alone, and the copy goes on.

pgvector values come back through ``vector_send``, pgvector's binary form, which decodes
with one numpy call; the text form would take a parse of every number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from sqlalchemy import Column, Connection, Integer, bindparam, func, select
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler

from ctxbase.db.database import Database
from ctxbase.db.types import VECTOR_STORAGE_ATTR, EmbeddingVector
from ctxbase.transfer.tables import TablePlan

Decoder = Callable[[Any], Any] | None


@dataclass(frozen=True)
class SourceRow:
    """One row read: its key, and its values (in column order) or why they are unusable."""

    key: Any
    values: tuple[Any, ...] | None
    error: str | None = None


def decode_pgvector(value: bytes) -> np.ndarray:
    """pgvector's binary form: dimensions (int16), unused (int16), big-endian float32s."""
    return np.frombuffer(value, dtype=">f4", offset=4).astype(np.float32)


class TableReader:
    """Pages of one table of ``db``, ``limit`` rows after a key, in key order."""

    def __init__(
        self,
        db: Database,
        plan: TablePlan,
        columns: Sequence[Column[Any]] | None = None,
        where: ColumnElement[bool] | None = None,
    ) -> None:
        self.plan = plan
        self.columns = list(columns or plan.table.columns)
        dialect = db.engine.dialect
        pgvector = getattr(dialect, VECTOR_STORAGE_ATTR, "bytes") == "pgvector"
        self._dialect = dialect
        selected: list[Any] = []
        #: Decoders are made on the first page: some need the type the driver reports.
        self.decoders: list[Decoder] | None = None
        self._pgvector_columns: set[int] = set()
        for position, column in enumerate(self.columns):
            if pgvector and isinstance(column.type, EmbeddingVector):
                selected.append(func.vector_send(column))
                self._pgvector_columns.add(position)
            else:
                selected.append(column)
        key = plan.key
        self._key_index = self.columns.index(key)
        key_impl = key.type.dialect_impl(dialect)
        self._bind_key = key_impl.bind_processor(dialect)
        base = select(*selected)
        if where is not None:
            base = base.where(where)
        limit = bindparam("limit", type_=Integer())
        self._first = self._compile(base.order_by(key).limit(limit), dialect)
        following = base.where(key > bindparam("after", type_=key.type))
        self._next = self._compile(following.order_by(key).limit(limit), dialect)

    @staticmethod
    def _compile(statement: Any, dialect: Any) -> tuple[str, list[str], dict[str, Any]]:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        order = list(compiled.positiontup or []) if dialect.positional else []
        return compiled.string, order, dict(compiled.params)

    def page(self, connection: Connection, after: Any, limit: int) -> list[SourceRow]:
        """Up to ``limit`` rows with a key greater than ``after`` (None: from the start)."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = self._bind_key(after) if self._bind_key else after
        sql, order, defaults = self._first if after is None else self._next
        params = {**defaults, **params}
        args: Any = [params[name] for name in order] if order else params
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, args)
            raw_rows = cursor.fetchall()
            decoders = self.decoders or self._make_decoders(cursor.description)
        finally:
            cursor.close()
        return [self._decode(row, decoders) for row in raw_rows]

    def _make_decoders(self, description: Sequence[Any]) -> list[Decoder]:
        decoders: list[Decoder] = []
        for position, (column, described) in enumerate(zip(self.columns, description, strict=True)):
            if position in self._pgvector_columns:
                decoders.append(decode_pgvector)
                continue
            impl = column.type.dialect_impl(self._dialect)
            decoders.append(impl.result_processor(self._dialect, described[1]))
        self.decoders = decoders
        return decoders

    def _decode(self, raw: Sequence[Any], decoders: list[Decoder]) -> SourceRow:
        key_decoder = decoders[self._key_index]
        raw_key = raw[self._key_index]
        key = key_decoder(raw_key) if key_decoder and raw_key is not None else raw_key
        try:
            values = tuple(
                decode(value) if decode is not None and value is not None else value
                for decode, value in zip(decoders, raw, strict=True)
            )
        except Exception as error:  # any decoding failure is this row's alone
            return SourceRow(key, None, f"cannot read the row: {type(error).__name__}: {error}")
        return SourceRow(key, values)
