"""Fixtures shared by the whole suite.

``database_url`` and ``store`` are parametrised over every backend: ``sqlite-memory``,
``sqlite-file``, ``postgres`` (with pgvector) and ``postgres-novector`` (the same server,
databases without the pgvector extension: vectors stored as bytes, searched exactly).
With ``CI=true`` a PostgreSQL that cannot start fails the run instead of skipping its
tests.

A test too slow to be worth a fourth run, and that does not depend on vector storage,
may leave out ``postgres-novector`` with ``@pytest.mark.skip_backend("postgres-novector",
reason=...)``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

import ctxbase
from ctxbase.db import migrate
from ctxbase.db.database import Database
from tests.postgres import (
    NOVECTOR_ROLE,
    NOVECTOR_TEMPLATE,
    TEMPLATE,
    PostgresServer,
    running_server,
)

pytest_plugins = ["tests.secret_scan"]  # no credential in any response, log or output

BACKENDS = ["sqlite-memory", "sqlite-file", "postgres", "postgres-novector"]
#: Backends whose databases outlive a connection (the ``persistent_database_url``s):
#: about files and processes, where pgvector makes no difference.
PERSISTENT_BACKENDS = ["sqlite-file", "postgres"]
#: Tests embed with word hashing (fast, deterministic); tests marked `model` use the real
#: local model. Set for processes the tests start too (servers, CLI).
TEST_EMBEDDER = "hash:64"
os.environ.setdefault("CTXBASE_EMBEDDER", TEST_EMBEDDER)
#: Stored secrets are encrypted with a key made for this run, never a file in the checkout.
TEST_SECRET_KEY = Fernet.generate_key().decode()
os.environ.setdefault("CTXBASE_SECRET_KEY", TEST_SECRET_KEY)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session", autouse=True)
def no_key_file_in_the_checkout() -> Iterator[None]:
    """Tests keep their secret keys to themselves: none may land in the working tree."""
    key_file = Path("ctxbase.key")
    existed = key_file.exists()
    yield
    assert existed or not key_file.exists(), "a test wrote ctxbase.key into the working tree"


@pytest.fixture(scope="session")
def secret_key() -> str:
    """The key encrypting stored secrets in this run (a credential like any other)."""
    return os.environ["CTXBASE_SECRET_KEY"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_server())
        except Exception as e:  # any failure to start is reported the same way
            if IN_CI:
                pytest.fail(f"PostgreSQL could not start in CI: {e!r}")
            pytest.skip(f"PostgreSQL could not start: {e!r}")
        yield server


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer) -> str:
    """A database at schema head that each store test copies (faster than migrating)."""
    postgres.execute(
        f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}"
    )
    db = Database(postgres.url(TEMPLATE))
    migrate.upgrade(db)
    db.dispose()
    return TEMPLATE


@pytest.fixture(scope="session")
def postgres_novector_template(postgres: PostgresServer) -> Iterator[str]:
    """A database at schema head that has no pgvector: made and migrated by a role that
    may not create the extension, so ctxbase stores vectors as bytes (as on a server
    without pgvector). Its copies belong to that role; the tests log in as it."""
    postgres.execute(
        f"DROP DATABASE IF EXISTS {NOVECTOR_TEMPLATE} WITH (FORCE)",
        f"DROP ROLE IF EXISTS {NOVECTOR_ROLE}",
        f"CREATE ROLE {NOVECTOR_ROLE} LOGIN",
    )
    postgres.create_database(NOVECTOR_TEMPLATE, owner=NOVECTOR_ROLE)
    db = Database(postgres.url(NOVECTOR_TEMPLATE, user=NOVECTOR_ROLE))
    migrate.upgrade(db)
    assert not db.backend.has_vector_type, "the no-pgvector template got pgvector"
    db.dispose()
    yield NOVECTOR_TEMPLATE
    postgres.execute(
        f"DROP DATABASE IF EXISTS {NOVECTOR_TEMPLATE} WITH (FORCE)", f"DROP ROLE {NOVECTOR_ROLE}"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "skip_backend(name, reason): do not run this test on backend `name` (say why)",
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    for marker in request.node.iter_markers("skip_backend"):
        if request.param in marker.args:
            pytest.skip(f"not on {request.param}: {marker.kwargs['reason']}")
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of each backend."""
    yield from _empty_database(backend, tmp_path, request)


@pytest.fixture(params=PERSISTENT_BACKENDS)
def persistent_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend that outlives a connection (not in-memory)."""
    yield from _empty_database(request.param, tmp_path, request)


def _empty_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite-memory":
        yield "sqlite://"
    elif backend == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'ctxbase.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        owner = _novector_role(backend, request)
        with server.database(owner=owner) as url:
            yield url


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ctxbase.Store]:
    """A store at schema head on each backend."""
    yield from store_on(backend, tmp_path, request)


def store_on(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, **options: object
) -> Iterator[ctxbase.Store]:
    """A store at schema head on ``backend``, opened with ``options``, closed afterwards."""
    if backend in ("postgres", "postgres-novector"):
        server: PostgresServer = request.getfixturevalue("postgres")
        owner = _novector_role(backend, request)
        template = request.getfixturevalue(
            "postgres_novector_template" if owner else "postgres_template"
        )
        with (
            server.database(template=template, owner=owner) as url,
            open_store(url, **options) as opened,
        ):
            yield opened
    else:
        url = "sqlite://" if backend == "sqlite-memory" else f"sqlite:///{tmp_path / 'ctxbase.db'}"
        with open_store(url, **options) as opened:
            yield opened


def _novector_role(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The role owning ``postgres-novector`` databases (None for other backends)."""
    if backend != "postgres-novector":
        return None
    request.getfixturevalue("postgres_novector_template")  # creates the role
    return NOVECTOR_ROLE


def open_store(url: str, **options: object) -> ctxbase.Store:
    """A store as the tests use it: the test embedder unless one is given."""
    defaults = {
        "embedder": TEST_EMBEDDER,
        "secret_key": os.environ["CTXBASE_SECRET_KEY"],
        # Servers over test stores need no key unless a test says so (tests/security
        # and the HTTP contract targets run with keys).
        "auth": "disabled",
    }
    return ctxbase.open(url, **{**defaults, **options})


def run_in_threads(work: Callable[[], object], count: int) -> list[BaseException]:
    """Run ``work`` in ``count`` threads at once; the errors they raised."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            work()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
