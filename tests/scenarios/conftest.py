"""Fixtures of the scenarios: each of the five reference systems walked through ctxbase.

Every scenario runs on an SQLite file and on PostgreSQL with pgvector (the ``backend``
fixture of the suite, narrowed here to those two), through the library and, where its
guide is about a server, through ``ctxbase.Client`` against a live server, and through
the ``ctxbase`` command where its guide runs a command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from click.testing import Result
from typer.testing import CliRunner

import ctxbase
from ctxbase.cli import app
from ctxbase.server import create_app
from tests.live import live_server

SCENARIO_BACKENDS = ["sqlite-file", "postgres"]

runner = CliRunner()


@pytest.fixture(params=SCENARIO_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Overrides the suite's backend: the scenarios run on SQLite files and PostgreSQL."""
    return str(request.param)


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run ``ctxbase ARGS`` in this process, as a user would type it."""
    return runner.invoke(app, list(args), input=stdin, env=env)


def ok(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``ctxbase ARGS``; its standard output, after checking it exited 0."""
    result = cli(*args, stdin=stdin, env=env)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


@dataclass
class Served:
    """A live server over a store, and the operator's admin key for it."""

    url: str
    admin_key: str

    def client(self, key: str | None = None) -> ctxbase.Client:
        return ctxbase.Client(self.url, api_key=key or self.admin_key)


@contextmanager
def serve(store: ctxbase.Store) -> Iterator[Served]:
    """Serve ``store`` over HTTP with keys required, as deployed."""
    settings = store.settings.model_copy(
        update={"auth": "required", "rate_limit_per_minute": 1_000_000}
    )
    key = store.keys.create(role="admin", name="operator").key
    with live_server(create_app(store=store, settings=settings)) as url:
        yield Served(url, key)
