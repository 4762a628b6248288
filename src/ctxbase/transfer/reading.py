"""Reading a table in key order, page by page, as the driver returns it.

Pages hold the driver's own values. A writer that can use them as they are (SQLite's
stored text going into PostgreSQL's ``COPY``) skips decoding; others ask the page to
decode, which uses the very type processors SQLAlchemy would apply, column by column, and
row by row only when something will not decode: such a row becomes an error of its own
(JSON that does not parse, a vector of the wrong size), and the copy goes on.

pgvector values are read through ``vector_send``, pgvector's binary form, which decodes
with one numpy call; the text form would take a parse of every number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
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
    """One decoded row: its key, and its values (in column order) or why they are unusable."""

    key: Any
    values: tuple[Any, ...] | None
    error: str | None = None


def decode_pgvector(value: bytes) -> np.ndarray:
    """pgvector's binary form: dimensions (int16), unused (int16), big-endian float32s."""
    return np.frombuffer(value, dtype=">f4", offset=4).astype(np.float32)


class TableReader:
    """Pages of one table of ``db``: ``limit`` rows after a key, in key order."""

    def __init__(
        self,
        db: Database,
        plan: TablePlan,
        columns: Sequence[Column[Any]] | None = None,
        where: ColumnElement[bool] | None = None,
    ) -> None:
        self.plan = plan
        self.backend = db.backend
        self.columns = list(columns or plan.table.columns)
        dialect = self._dialect = db.engine.dialect
        self.pgvector = getattr(dialect, VECTOR_STORAGE_ATTR, "bytes") == "pgvector"
        selected = [
            func.vector_send(c) if self.pgvector and isinstance(c.type, EmbeddingVector) else c
            for c in self.columns
        ]
        #: Made on the first page: some decoders need the type the driver reports.
        self._decoders: list[Decoder] | None = None
        key = plan.key
        self.key_index = self.columns.index(key)
        self._bind_key = key.type.dialect_impl(dialect).bind_processor(dialect)
        base = select(*selected)
        if where is not None:
            base = base.where(where)
        limit = bindparam("limit", type_=Integer())
        self._first = self._compile(base.order_by(key).limit(limit))
        following = base.where(key > bindparam("after", type_=key.type))
        self._next = self._compile(following.order_by(key).limit(limit))

    def _compile(self, statement: Any) -> tuple[str, list[str], dict[str, Any]]:
        dialect = self._dialect
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        order = list(compiled.positiontup or []) if dialect.positional else []
        defaults = {}  # values bound in the statement itself (a filter), as the driver takes them
        for name, value in compiled.params.items():
            process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            defaults[name] = process(value) if process is not None and value is not None else value
        return compiled.string, order, defaults

    def page(self, connection: Connection, after: Any, limit: int) -> Page:
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
            raw = list(cursor.fetchall())
            if self._decoders is None:
                self._decoders = self._make_decoders(cursor.description)
        finally:
            cursor.close()
        return Page(self, raw)

    def _make_decoders(self, description: Sequence[Any]) -> list[Decoder]:
        decoders: list[Decoder] = []
        for column, described in zip(self.columns, description, strict=True):
            if self.pgvector and isinstance(column.type, EmbeddingVector):
                decoders.append(decode_pgvector)
            else:
                impl = column.type.dialect_impl(self._dialect)
                decoders.append(impl.result_processor(self._dialect, described[1]))
        return decoders

    def key_of(self, raw_row: Sequence[Any]) -> Any:
        assert self._decoders is not None
        decode, value = self._decoders[self.key_index], raw_row[self.key_index]
        return decode(value) if decode is not None and value is not None else value

    def decode(self, raw_rows: list[Any]) -> list[SourceRow]:
        if not raw_rows:
            return []
        try:
            return self._decode_columns(raw_rows)
        except Exception:  # some row will not decode: find which, row by row
            return [self._decode_row(row) for row in raw_rows]

    def _decode_columns(self, raw_rows: list[Any]) -> list[SourceRow]:
        """Decode column by column: one loop per column instead of a call per value."""
        assert self._decoders is not None
        columns = list(zip(*raw_rows, strict=True))
        for position, decode in enumerate(self._decoders):
            if decode is not None:
                columns[position] = tuple(
                    None if value is None else decode(value) for value in columns[position]
                )
        keys = columns[self.key_index]
        return [
            SourceRow(key, values)
            for key, values in zip(keys, zip(*columns, strict=True), strict=True)
        ]

    def _decode_row(self, raw: Sequence[Any]) -> SourceRow:
        assert self._decoders is not None
        key = self.key_of(raw)
        try:
            values = tuple(
                decode(value) if decode is not None and value is not None else value
                for decode, value in zip(self._decoders, raw, strict=True)
            )
        except Exception as error:  # any decoding failure is this row's alone
            return SourceRow(key, None, f"cannot read the row: {type(error).__name__}: {error}")
        return SourceRow(key, values)


class Page:
    """Rows read in one go: as the driver gave them, and decoded when first asked."""

    def __init__(self, reader: TableReader, raw: list[Any]) -> None:
        self.reader = reader
        self.raw = raw

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def last_key(self) -> Any:
        return self.reader.key_of(self.raw[-1])

    @cached_property
    def rows(self) -> list[SourceRow]:
        return self.reader.decode(self.raw)

    @cached_property
    def columns(self) -> list[tuple[Any, ...]]:
        """The raw values a column at a time: one transposition for every consumer of the
        page (the source's hash and the COPY block both work column by column)."""
        return list(zip(*self.raw, strict=True))

    def decoded_values(self) -> list[tuple[Any, ...]]:
        """Every row's values; raises ValueError if one cannot be decoded."""
        values = [row.values for row in self.rows]
        if any(v is None for v in values):
            raise ValueError("a row cannot be read")
        return cast(list[tuple[Any, ...]], values)
