"""Feature code asks the backend object (``db.backend``), never which backend it is: no
comparison with a backend's name outside ``src/ctxbase/db/backends``.

Mapping a name to a backend class (``backend_class(dialect.name)``) and parsing URL
schemes (``db/urls.py``) are lookups, not comparisons, and are allowed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_NAME = r"""['"](sqlite|postgresql|postgres)['"]"""
#: ``x == "sqlite"``, ``"postgresql" != x``, ``dialect.name == …``, ``x in ("sqlite", …)``,
#: ``backend == …`` / ``backend_name != …`` (in POSIX extended syntax, for git grep -E).
PATTERN = "|".join(
    (
        rf"(==|!=)[[:space:]]*{_NAME}",
        rf"{_NAME}[[:space:]]*(==|!=)",
        r"dialect\.name[[:space:]]*(==|!=)",
        rf"[[:space:]]in[[:space:]]*[(\[{{][[:space:]]*{_NAME}",
        r"backend(_name)?[[:space:]]*(==|!=)",
    )
)

#: Files allowed to compare names, and why. Migration revisions are frozen history: each
#: must emit the same DDL forever, so they test the dialect themselves rather than ask
#: today's backend objects.
KNOWN_EXCEPTIONS = {
    "src/ctxbase/db/migrations/versions/0001_initial_schema.py": "frozen revision",
    "src/ctxbase/db/migrations/versions/0003_full_text_search.py": "frozen revision",
    "src/ctxbase/db/migrations/versions/0005_embedding_deletions.py": "frozen revision",
    "src/ctxbase/db/migrations/versions/0009_moving_in.py": "frozen revision",
    # A registered configuration's `kind` (a field the user chose) picks the form fields
    # and columns to show; no code here asks which backend it runs on.
    "src/ctxbase/server/console/pages/databases.py": "configuration kind chooses fields",
    "src/ctxbase/server/console/templates/database.html": "configuration kind chooses fields",
    "src/ctxbase/server/console/templates/databases.html": "configuration kind chooses fields",
}


#: Driver imports; allowed in the backends and their helpers (db/vectors, db/fulltext).
DRIVER_IMPORT = r"^[[:space:]]*(import|from)[[:space:]]+(sqlite3|psycopg)([[:space:].]|$)"
#: Modules still importing a driver outside them: converted next.
KNOWN_DRIVER_IMPORTS = {"src/ctxbase/transfer/backup.py", "src/ctxbase/transfer/postgres.py"}


def _git_grep(*paths: str, pattern: str = PATTERN) -> dict[str, list[str]]:
    """Lines matching ``pattern`` per file, under ``paths`` (git pathspecs)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    found = subprocess.run(
        ["git", "grep", "-nE", pattern, "--", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode in (0, 1), found.stderr  # 1: nothing matched
    hits: dict[str, list[str]] = {}
    for line in found.stdout.splitlines():
        path, _, rest = line.partition(":")
        hits.setdefault(path, []).append(rest)
    return hits


def test_no_backend_name_comparison_outside_the_backends() -> None:
    hits = _git_grep("src/ctxbase", ":!src/ctxbase/db/backends")
    unexpected = {path: lines for path, lines in hits.items() if path not in KNOWN_EXCEPTIONS}
    assert unexpected == {}, "ask db.backend (a method or a capability flag) instead"


def test_drivers_are_imported_only_by_the_backends() -> None:
    outside = (":!src/ctxbase/db/backends", ":!src/ctxbase/db/vectors", ":!src/ctxbase/db/fulltext")
    hits = _git_grep("src/ctxbase", *outside, pattern=DRIVER_IMPORT)
    assert set(hits) == KNOWN_DRIVER_IMPORTS
    assert _git_grep("src/ctxbase/db/backends", pattern=DRIVER_IMPORT)  # the pattern finds them


def test_every_known_exception_still_compares() -> None:
    """A file converted leaves the list, so the list only ever shrinks to nothing."""
    hits = _git_grep(*KNOWN_EXCEPTIONS)
    assert sorted(set(KNOWN_EXCEPTIONS) - set(hits)) == []


@pytest.mark.parametrize(
    "line",
    [
        'if db.backend == "postgresql":',
        "if self._db.backend != 'sqlite' or x:",
        'module = postgres if "postgresql" == name else sqlite',
        'render_as_batch=connection.dialect.name == "sqlite",',
        'if url.drivername in ("sqlite", "sqlite+pysqlite"):',
        "if store.backend_name == kind:",
    ],
)
def test_the_pattern_finds_comparisons(line: str) -> None:
    assert _matches(line)


@pytest.mark.parametrize(
    "line",
    [
        "render_as_batch=backend_class(connection.dialect.name).rebuilds_tables_to_alter,",
        'JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")',
        "if db.backend.has_vector_type:",
    ],
)
def test_the_pattern_leaves_lookups_alone(line: str) -> None:
    assert not _matches(line)


def _matches(line: str) -> bool:
    """Whether ``line`` matches, read as git grep -E reads it (POSIX extended, as grep -E)."""
    if shutil.which("grep") is None:
        pytest.skip("needs grep")
    found = subprocess.run(
        ["grep", "-E", PATTERN], input=line, capture_output=True, text=True, check=False
    )
    assert found.returncode in (0, 1), found.stderr
    return found.returncode == 0
