"""Every Python and shell block of README.md and docs/*.md runs, as a reader would run it.

A document's blocks run in order, in one session, like a reader going down the page: the
Python blocks share one namespace (top-level ``await`` works, as in ``python -m asyncio``)
and the shell blocks run with ``bash -e`` and the virtual environment's ``bin`` on
``PATH``, all in a fresh empty working directory, so ``sqlite:///./agents.db`` is a new
file there. Beside them a ctxbase server runs on that directory's ``ctxbase.db`` (what
``ctxbase serve`` would serve from there), reached the way the docs reach it:

- ``127.0.0.1:8420`` (the default port) in a block is replaced by the server's address;
- the environment variable ``CTXBASE_API_KEY`` holds an admin key of that server (the key
  ``ctxbase serve`` prints at its first start).

A block that cannot run here (a long-lived server, a benchmark, a database on another
host) has ``<!-- not run: why -->`` on a line of its own before it; a marker without a
reason, or with no block after it, fails.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ctxbase
from ctxbase.server.app import create_app
from tests.live import live_server
from tests.markdown_blocks import (
    DOCUMENTS,
    INERT,
    PYTHON,
    ROOT,
    SHELL,
    Block,
    blocks_of,
    stray_markers,
)

DOCUMENTED_ADDRESS = "127.0.0.1:8420"
SHELL_TIMEOUT_SECONDS = 120
#: Documents with at least one block to run.
RUN_DOCUMENTS = [
    path
    for path in DOCUMENTS
    if any(block.runnable and block.skip_reason is None for block in blocks_of(path))
]


class Reader:
    """Runs the blocks of one document in order, in one working directory."""

    def __init__(self, workdir: Path, base_url: str) -> None:
        self.workdir = workdir
        self.address = base_url.removeprefix("http://")
        self.namespace: dict[str, object] = {"__name__": "__main__"}
        self.loop = asyncio.new_event_loop()

    def run(self, block: Block) -> None:
        code = block.code.replace(DOCUMENTED_ADDRESS, self.address)
        if block.language in PYTHON:
            self._run_python(block, code)
        else:
            self._run_shell(block, code)

    def _run_python(self, block: Block, code: str) -> None:
        # Padded so that a traceback names the Markdown file's own line numbers.
        source = "\n" * (block.line - 1) + code
        compiled = compile(source, str(block.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(compiled, self.namespace)  # a coroutine when the block awaits
        if inspect.iscoroutine(result):
            self.loop.run_until_complete(result)

    def _run_shell(self, block: Block, code: str) -> None:
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", code],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=SHELL_TIMEOUT_SECONDS,
            check=False,
        )
        assert done.returncode == 0, (
            f"{block.where} exited with {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )

    def close(self) -> None:
        """Close what the examples opened, as a reader's process would on exit."""
        for value in self.namespace.values():
            if isinstance(value, ctxbase.AsyncStore):
                self.loop.run_until_complete(value.close())
            elif isinstance(value, ctxbase.Store | ctxbase.Client):
                value.close()
        self.loop.close()


@pytest.fixture
def reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reader]:
    workdir = tmp_path / "reader"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    served = ctxbase.open(
        f"sqlite:///{workdir / 'ctxbase.db'}", secret_key=os.environ["CTXBASE_SECRET_KEY"]
    )
    try:
        monkeypatch.setenv("CTXBASE_API_KEY", served.keys.create(role="admin", name="docs").key)
        with live_server(create_app(store=served)) as base_url:
            running = Reader(workdir, base_url)
            try:
                yield running
            finally:
                running.close()
    finally:
        served.close()


@pytest.mark.model
@pytest.mark.parametrize("document", RUN_DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_examples_of_a_document_run(document: Path, reader: Reader) -> None:
    for block in blocks_of(document):
        if block.runnable and block.skip_reason is None:
            reader.run(block)


def test_the_readme_and_the_usage_guide_have_examples_that_run() -> None:
    runs = {path.relative_to(ROOT).as_posix() for path in RUN_DOCUMENTS}
    assert {"README.md", "docs/usage.md"} <= runs


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_says_its_language_and_every_skip_says_why(document: Path) -> None:
    for block in blocks_of(document):
        assert block.language in PYTHON | SHELL | INERT, (
            f"{block.where}: a fenced block needs a language of {sorted(PYTHON | SHELL | INERT)}"
        )
        if block.skip_reason is not None:
            assert block.skip_reason, f"{block.where}: `<!-- not run: … -->` must say why"
            assert block.runnable, f"{block.where}: a {block.language} block never runs"
    for marker in stray_markers(document):
        pytest.fail(
            f"{marker.path.relative_to(ROOT)}:{marker.line}: a `not run` marker must be "
            "right before a fenced block"
        )


def test_blocks_and_markers_are_read_as_written(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n```python\nx = 1\n```\n\n<!-- not run: starts a server -->\n\n"
        "```bash\nmake serve\n```\n\n<!-- not run -->\n```json\n{}\n```\n\n"
        "<!-- not run: nothing follows -->\nmore text\n\n- a list item:\n\n"
        "  ```sh\n  ctxbase version\n  ```\n"
    )
    python, shell, data, listed = blocks_of(page)
    assert (python.language, python.line, python.code, python.skip_reason) == (
        "python",
        4,
        "x = 1\n",
        None,
    )
    assert (shell.language, shell.code, shell.skip_reason) == (
        "bash",
        "make serve\n",
        "starts a server",
    )
    assert (data.language, data.skip_reason) == ("json", "")
    assert (listed.language, listed.code) == ("sh", "ctxbase version\n")
    assert [marker.line for marker in stray_markers(page)] == [18]
