"""Differences between two texts, as segments a template marks up (``<del>``/``<ins>``).

Memories are short: their changes read best word by word. Context units are files and
documents: theirs read best line by line, with a few lines of context around each change.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
#: Lines this long or texts this big are compared line by line only (difflib is quadratic).
_WORD_DIFF_LIMIT = 20_000
Kind = Literal["same", "add", "del", "gap"]


@dataclass(frozen=True)
class Segment:
    kind: Kind
    text: str


def word_diff(old: str | None, new: str | None) -> list[Segment]:
    """``old`` → ``new`` as runs of kept, deleted and inserted words."""
    old, new = old or "", new or ""
    if len(old) + len(new) > _WORD_DIFF_LIMIT:
        return [Segment("del", old), Segment("add", new)] if old != new else [Segment("same", old)]
    before, after = _TOKEN.findall(old), _TOKEN.findall(new)
    opcodes = difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
    segments: list[Segment] = []
    deleted, added = "", ""
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        kept = "".join(before[i1:i2])
        between_changes = 0 < index < len(opcodes) - 1 and (deleted or added)
        if tag == "equal" and not (between_changes and kept.isspace()):
            segments.extend(_changes(deleted, added))
            deleted, added = "", ""
            segments.append(Segment("same", kept))
        elif tag == "equal":  # a space between two changes: one change, read as a phrase
            deleted, added = deleted + kept, added + kept
        else:
            deleted, added = deleted + kept, added + "".join(after[j1:j2])
    return [*segments, *_changes(deleted, added)]


def _changes(deleted: str, added: str) -> list[Segment]:
    changes = [Segment("del", deleted), Segment("add", added)]
    return [change for change in changes if change.text]


def line_diff(old: str | None, new: str | None, context: int = 3) -> list[Segment]:
    """``old`` → ``new`` line by line: changed lines with ``context`` lines around them,
    and a ``gap`` where unchanged lines are left out."""
    before, after = (old or "").splitlines(), (new or "").splitlines()
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    segments: list[Segment] = []
    for group in matcher.get_grouped_opcodes(context):
        first = group[0]
        segments.append(Segment("gap", f"@@ line {first[1] + 1} → line {first[3] + 1} @@"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                segments.extend(Segment("same", line) for line in before[i1:i2])
                continue
            segments.extend(Segment("del", line) for line in before[i1:i2])
            segments.extend(Segment("add", line) for line in after[j1:j2])
    return segments
