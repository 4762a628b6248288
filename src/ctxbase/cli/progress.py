"""Progress of the commands that move data (export, import, backup, restore), on stderr.

On a terminal: rich bars, one per table being moved (with its total when known), and a
spinner for a step that cannot be measured (SQLite's online backup, ``pg_dump``, checking
a backup). Not on a terminal: one plain line as each phase starts, for logs. With
``--quiet``: nothing. Standard output keeps only the command's result, so ``--json`` and
pipes are never mixed with progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from ctxbase.cli import common

QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Show no progress (stderr stays empty).")
]


class _Count(ProgressColumn):
    """``done/total`` rows, ``done`` when the total is unknown, nothing for a step."""

    def render(self, task: Task) -> Text:
        if task.fields.get("step"):
            return Text("")
        done = int(task.completed)
        return Text(f"{done}/{int(task.total)}" if task.total is not None else str(done))


class TransferProgress:
    """Takes a transfer's ``on_phase`` and ``progress`` reports and shows them."""

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or common.err
        self.mode = "off" if quiet else ("bars" if self.console.is_terminal else "plain")
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}  # the bars of the phase, by table
        self.unbounded: dict[TaskID, int] = {}  # rows so far of bars with no total
        self.steps: list[TaskID] = []
        self.phase_name = ""

    def __enter__(self) -> TransferProgress:
        if self.mode == "bars":
            self.bars = Progress(
                SpinnerColumn(finished_text="[green]✓[/]"),
                TextColumn("{task.description:<28}"),
                BarColumn(),
                _Count(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bars is not None:
            if exc is None:
                self._finish_steps()
            self.bars.stop()

    def phase(self, name: str, totals: Mapping[str, int | None], *, tables: bool = True) -> None:
        """A phase starts: a bar per table that has rows to move, or one spinner.
        ``tables=False``: the totals are not per table (the rows of a file), and the
        plain line counts rows alone."""
        self.phase_name = name
        if self.mode == "plain":
            self.console.print(_plain_line(name, totals, tables=tables), highlight=False)
        if self.bars is None:
            return
        self._finish_steps()
        self.tasks = {}
        for table, total in totals.items():
            if total != 0:
                self._add(table, total)
        if not totals:
            step = self.bars.add_task(name, total=None, step=True)
            self.steps.append(step)

    def rows(self, table: str, count: int) -> None:
        """``count`` more rows of ``table`` moved."""
        if self.bars is None:
            return
        task = self.tasks.get(table)
        if task is None:
            task = self._add(table, None)
        if task in self.unbounded:
            self.unbounded[task] += count
        self.bars.advance(task, count)

    def _add(self, table: str, total: int | None) -> TaskID:
        assert self.bars is not None
        task = self.bars.add_task(f"{self.phase_name} {table}", total=total)
        self.tasks[table] = task
        if total is None:
            self.unbounded[task] = 0
        return task

    def _finish_steps(self) -> None:
        """Fill the bars of the phase that ended: its steps, and what had no total."""
        assert self.bars is not None
        for step in self.steps:
            self.bars.update(step, total=1, completed=1)
        for task, done in self.unbounded.items():
            self.bars.update(task, total=done, completed=done)
        self.steps, self.unbounded = [], {}


def _plain_line(name: str, totals: Mapping[str, int | None], *, tables: bool = True) -> str:
    known = [total for total in totals.values() if total is not None]
    if totals and len(known) == len(totals):
        moving = [total for total in known if total]
        where = f" in {len(moving)} table(s)" if tables else ""
        return f"{name.capitalize()}: {sum(known)} row(s){where}…"
    return f"{name.capitalize()}…"
