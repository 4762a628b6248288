"""The canonical row form is the same whichever way it is computed: PostgreSQL in SQL,
Python from SQLite's stored values, Python from decoded values; and on a PostgreSQL
without pgvector, where vectors are bytes."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import pytest
from sqlalchemy import JSON, Column

from ctxbase import transfer
from ctxbase.db.database import Database
from ctxbase.db.migrate import detect_vector_storage
from ctxbase.transfer.canonical import (
    Checksum,
    RowRenderer,
    jsonb_text,
    render_json_text,
    swapped_vectors,
)
from ctxbase.transfer.reading import TableReader
from ctxbase.transfer.tables import plan_tables
from ctxbase.transfer.verify import table_checksum
from tests.postgres import PostgresServer
from tests.transfer.data import assert_same_data, settings

PLAIN_POSTGRES = "postgresql://postgres@localhost:5432/postgres"


def _decoded_checksum(db: Database, name: str) -> Checksum:
    plan = plan_tables([name])[0]
    reader = TableReader(db, plan)
    checksum = Checksum()
    renderer = RowRenderer.for_decoded(reader.columns)
    after = None
    while True:
        with db.read() as connection:
            page = reader.page(connection, after, 1000)
        if not page.raw:
            return checksum
        renderer.add_to(checksum, page.decoded_values())
        after = page.last_key


def test_three_ways_agree(source_url: str, postgres: PostgresServer) -> None:
    with postgres.database() as target:
        assert transfer.migrate(source_url, target, settings=settings()).status == "completed"
        with Database(source_url) as sqlite, Database(target) as pg:
            detect_vector_storage(pg)
            for name in transfer.data_tables():
                plan = plan_tables([name])[0]
                by_sql = table_checksum(pg, plan)
                from_storage = table_checksum(sqlite, plan)
                decoded = _decoded_checksum(sqlite, name)
                assert by_sql.hex == from_storage.hex == decoded.hex, name
                assert by_sql.rows == from_storage.rows == decoded.rows


def test_checksum_sums_the_first_half_of_each_digest() -> None:
    digests = [hashlib.md5(str(n).encode()).digest() for n in range(1000)]
    one_by_one, at_once, reversed_ = Checksum(), Checksum(), Checksum()
    for digest in digests:
        one_by_one.add_digest(digest)
    at_once.add_digests(digests)
    reversed_.add_digests(digests[::-1])
    expected = sum(int.from_bytes(d[:8], "big", signed=True) for d in digests) % 2**64
    assert one_by_one.hex == at_once.hex == reversed_.hex == f"{expected:016x}"
    assert one_by_one.rows == at_once.rows == 1000

    duplicated = Checksum()
    duplicated.add_digests([*digests, digests[0]])
    assert duplicated.hex != at_once.hex
    duplicated.remove(digests[0])
    assert (duplicated.rows, duplicated.hex) == (1000, at_once.hex)

    restored = Checksum.from_json(at_once.to_json())
    # A checkpoint written when the checksum kept both halves of the digests.
    earlier = Checksum.from_json({"rows": 1000, "high": expected, "low": 12345})
    assert (restored.rows, restored.hex) == (earlier.rows, earlier.hex) == (1000, at_once.hex)


def test_jsonb_text_matches_postgresql(postgres: PostgresServer) -> None:
    documents = [
        '{"bb": 1, "a": [1.0, 1e2, 1.50, -0.0, "x\\u001f\\n\\"/é"], "ab": {}, "c": 1.5E-7}',
        '[true, false, null, 100000000000000000000.0, "\\\\ and \\t"]',
        '"just a string"',
        "-12",
    ]
    with psycopg.connect(postgres.admin_url) as connection:
        for document in documents:
            expected = connection.execute("SELECT %s::jsonb::text", [document]).fetchone()
            assert expected is not None
            assert render_json_text(document).decode() == expected[0]
    assert jsonb_text({"k": Decimal("1.50"), "z": uuid.UUID(int=0).hex}) == (
        '{"k": 1.50, "z": "00000000000000000000000000000000"}'
    )


@pytest.fixture
def plain_postgres() -> Iterator[str]:
    """A database on a PostgreSQL without pgvector, if one runs on localhost:5432."""
    try:
        admin = psycopg.connect(PLAIN_POSTGRES, autocommit=True, connect_timeout=2)
    except psycopg.Error:
        pytest.skip("no PostgreSQL without pgvector on localhost:5432")
    name = f"ctxbase_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        try:
            yield f"postgresql://postgres@localhost:5432/{name}"
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def test_into_postgres_without_pgvector_and_back(
    source_url: str, plain_postgres: str, tmp_path: object
) -> None:
    report = transfer.migrate(source_url, plain_postgres, settings=settings())
    assert report.status == "completed", report.error_log
    with Database(plain_postgres) as db:
        assert detect_vector_storage(db) == "bytes"
    assert_same_data(source_url, plain_postgres)


def test_one_swap_of_a_page_serves_its_hash_and_its_copy_block() -> None:
    """The vectors of one column object are swapped once for both consumers; another
    column, or a list changed in place, is swapped again."""

    def expected(column: Any, prefix: bytes) -> list[bytes]:
        return [prefix + np.frombuffer(v, "<f4").astype(">f4").tobytes() for v in column]

    rng = np.random.default_rng(5)
    first = tuple(rng.standard_normal(4, dtype=np.float32).tobytes() for _ in range(3))
    second = tuple(rng.standard_normal(4, dtype=np.float32).tobytes() for _ in range(3))
    for column in (first, second, first):
        assert swapped_vectors(column, b"\x01") == expected(column, b"\x01")
        assert swapped_vectors(column, b"HEAD") == expected(column, b"HEAD")
    changing = list(first)
    assert swapped_vectors(changing, b"") == expected(first, b"")
    changing[0] = second[0]
    assert swapped_vectors(changing, b"") == expected(changing, b"")


def test_a_column_of_json_renders_as_its_documents_one_by_one() -> None:
    """Stored JSON is parsed a column at a time; malformed documents, even ones that
    would join into valid JSON, fall back to one by one and come out unrenderable."""
    renderer = RowRenderer.for_sqlite([Column("doc", JSON)])

    def one_by_one(document: Any) -> bytes | None:
        part = render_json_text(document) if document is not None else None
        return hashlib.md5(b"\x00" if part is None else b"\x01" + part).digest()

    good = ['{"b": 1, "a": [1.50, "x"]}', None, "null", '"text"', 7, '{"n": 2}']
    assert renderer.digests_or_none([(d,) for d in good]) == [one_by_one(d) for d in good]
    for bad in (['{"a": 1}', "[1", "2]", '{"b": 2}'], ['{"a": 1}', '{"a"', ": 1}"]):
        digests = renderer.digests_or_none([(d,) for d in bad])
        assert digests[0] == one_by_one(bad[0])
        assert digests[1] is None and digests[2] is None
