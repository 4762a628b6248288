"""The fenced code blocks of the project's Markdown files, and the markers that skip them.

A block is skipped by an HTML comment on the line before its fence (blank lines between
are allowed), giving the reason: ``<!-- not run: starts a long-lived server -->``.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Every Markdown file a reader is pointed to.
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PYTHON = frozenset({"python", "py"})
SHELL = frozenset({"bash", "sh", "shell"})
#: Languages of blocks that show data, not commands: nothing to run.
INERT = frozenset({"json", "text"})

_FENCE = re.compile(r"^\s*```(?P<language>\S*)\s*$")  # also indented, in a list
_MARKER = re.compile(r"^\s*<!--\s*not run\b(?P<rest>.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the block's first line of code, 1-based
    language: str
    code: str
    skip_reason: str | None  # None: not marked; "": marked without a reason

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.language in PYTHON | SHELL


@dataclass(frozen=True)
class Marker:
    path: Path
    line: int
    reason: str


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of ``path``, in order, each with the marker right before it."""
    blocks, _ = _parse(path)
    return blocks


def stray_markers(path: Path) -> list[Marker]:
    """Markers that are not right before a fenced block (they would skip nothing)."""
    _, strays = _parse(path)
    return strays


def _parse(path: Path) -> tuple[list[Block], list[Marker]]:
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    strays: list[Marker] = []
    pending: Marker | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _MARKER.match(line)
        fence = _FENCE.match(line)
        if marker:
            if pending is not None:
                strays.append(pending)
            reason = marker["rest"].strip().removeprefix(":").strip()
            pending = Marker(path, index + 1, reason)
        elif fence:
            end = index + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            code = textwrap.dedent("\n".join(lines[index + 1 : end]) + "\n")
            reason = pending.reason if pending is not None else None
            blocks.append(Block(path, index + 2, fence["language"].lower(), code, reason))
            pending = None
            index = end
        elif line.strip() and pending is not None:
            strays.append(pending)
            pending = None
        index += 1
    if pending is not None:
        strays.append(pending)
    return blocks, strays
