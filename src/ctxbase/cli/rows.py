"""``ctxbase import --format rows FILE``: a JSON Lines file of another system's rows,
imported into a project with their ids, timestamps and links (``docs/moving-in.md``).

The file is read a batch at a time: each batch is one call of ``store.imports.rows`` (one
transaction), and the progress bar (``cli.progress``, as for the other transfers) moves
on as each commits. A failing batch writes
nothing; the ones before it stay written, and the same command with ``--skip-existing``
continues after them.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import typer
from rich.table import Table

from ctxbase.cli.common import err, open_store, out
from ctxbase.cli.progress import TransferProgress
from ctxbase.errors import CtxbaseError, InvalidInputError

_CONTINUE = "fix it and run the same command again with --skip-existing to continue"


def import_rows(
    ctx: typer.Context,
    path: Path,
    *,
    project: str,
    batch_size: int,
    skip_existing: bool,
    map_file: Path | None,
    id_namespace: str | None,
    quiet: bool,
) -> None:
    """Import the rows of ``path`` into ``project``, printing what was written."""
    namespace = _namespace(id_namespace)
    if not path.is_file():
        raise InvalidInputError(f"No such file: {path}")
    if map_file is not None and not map_file.parent.is_dir():
        raise InvalidInputError(f"No such directory for --map-file: {map_file.parent}")
    store = open_store(ctx)
    total = _count_rows(path)
    written: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    ids: dict[str, dict[str, uuid.UUID]] = {}
    embedded = batches = 0
    seconds = 0.0
    with path.open("rb") as handle, TransferProgress(quiet=quiet) as shown:
        shown.phase("importing", {"rows": total}, tables=False)
        for first_line, lines, count in _batches(handle, batch_size):
            try:
                report = store.imports.rows(
                    lines,
                    batch_size=batch_size,
                    existing="skip" if skip_existing else "error",
                    id_namespace=namespace,
                    first_line=first_line,
                    project=project,
                )
            except CtxbaseError as error:
                _save_map(map_file, ids)
                raise _after(error, first_line) from None
            written.update(report.written)
            skipped.update(report.skipped)
            for kind, mapped in report.ids.items():
                ids.setdefault(kind, {}).update(mapped)
            embedded += report.embedded
            batches += report.batches
            seconds += report.seconds
            shown.rows("rows", count)
    _save_map(map_file, ids)
    _print_summary(path, project, written, skipped, embedded, batches, seconds)
    if map_file is not None:
        err.print(f"Id mapping ({sum(len(m) for m in ids.values())} ids) written to {map_file}")


def _namespace(text: str | None) -> uuid.UUID | None:
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInputError(f"--id-namespace must be a UUID, not {text!r}") from None


def _count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _batches(handle: IO[bytes], size: int) -> Iterator[tuple[int, list[bytes], int]]:
    """(number of the first line, the lines, how many are rows) per batch of ``size``
    rows; blank lines travel with them, so that every line keeps its number."""
    lines: list[bytes] = []
    first, count = 1, 0
    for number, line in enumerate(handle, start=1):
        lines.append(line)
        if line.strip():
            count += 1
        if count == size:
            yield first, lines, count
            lines, first, count = [], number + 1, 0
    if count:
        yield first, lines, count


def _after(error: CtxbaseError, first_line: int) -> CtxbaseError:
    """``error`` saying which lines were written before the failing batch."""
    if first_line == 1:
        return error
    message = f"{error.message} Lines 1 to {first_line - 1} were written by earlier batches."
    copy = type(error)(message, details=error.details, hint=error.hint or _CONTINUE)
    copy.__cause__ = error.__cause__
    return copy


def _save_map(map_file: Path | None, ids: dict[str, dict[str, uuid.UUID]]) -> None:
    """One JSON object per line: ``{"kind", "original", "id"}``."""
    if map_file is None:
        return
    with map_file.open("w", encoding="utf-8") as target:
        for kind, mapped in ids.items():
            for original, new in mapped.items():
                entry: dict[str, Any] = {"kind": kind, "original": original, "id": str(new)}
                target.write(json.dumps(entry) + "\n")


def _print_summary(
    path: Path,
    project: str,
    written: Counter[str],
    skipped: Counter[str],
    embedded: int,
    batches: int,
    seconds: float,
) -> None:
    table = Table("kind", "written", "skipped")
    for kind in sorted(set(written) | set(skipped)):
        table.add_row(kind, str(written.get(kind, 0)), str(skipped.get(kind, 0)))
    out.print(table)
    rows = sum(written.values())
    rate = f", {rows / seconds:,.0f} rows/s" if seconds and rows else ""
    out.print(
        f"Imported {rows} row(s) from {path} into project {project!r} in {batches} batch(es)"
        f" ({embedded} vectors, {seconds:.1f} s{rate})"
    )
