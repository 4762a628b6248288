"""``store.imports``: rows of another system moving in, keeping their ids, timestamps and
links (the format is described in ``docs/moving-in.md``).

Rows are read in order and written in batches, each in one transaction: a batch with one
bad row (a field, a reference to a row neither in the batch nor in the project, an id
already taken) writes nothing, and the error names every bad line it found. Batches
before it stay written; importing the same rows again with ``existing="skip"`` continues
where it stopped, since ids that are not UUIDs are mapped to the same UUID every time.

One module per step: ``reading`` (rows to checked models), ``planning`` (ids),
``checking`` (the batch against the project, in its transaction), ``writing`` (inserts).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from ctxbase.db.schema import utcnow
from ctxbase.errors import CtxbaseError
from ctxbase.records.imports import IMPORT_NAMESPACE, ExistingRows, ImportReport, RowsImport
from ctxbase.store.base import DEFAULT_PROJECT, Domain, parse, projects_table
from ctxbase.store.embedding import turns
from ctxbase.store.imports.checking import BatchChecks
from ctxbase.store.imports.planning import Ids, Pending, plan
from ctxbase.store.imports.reading import Limits, Line, Parsed, RowProblems, lines, rows_error
from ctxbase.store.imports.reading import parse as parse_line
from ctxbase.store.imports.writing import EMBEDDED, BatchWrites, LineVectors

#: The hint of an error after some batches were written.
_CONTINUE = "fix the line and import the same rows again with existing='skip' to continue"
#: The hint of an error naming rows already in the project.
_SKIP = "existing='skip' (--skip-existing) leaves rows already in the project as they are"


class Imports(Domain):
    """``store.imports``."""

    def rows(
        self,
        rows: Iterable[Any] | str | bytes,
        *,
        batch_size: int = 1000,
        existing: ExistingRows = "error",
        id_namespace: uuid.UUID | None = None,
        first_line: int = 1,
        project: str = DEFAULT_PROJECT,
    ) -> ImportReport:
        """Import ``rows`` (JSON objects, models, or lines of JSON text; a whole JSON Lines
        document as one string) into ``project``, ``batch_size`` rows per transaction.

        ``existing``: a row whose id is already in the project fails its batch
        (``"error"``) or is left as stored (``"skip"``). Ids that are not UUIDs become
        ``uuid5(id_namespace or IMPORT_NAMESPACE, "<kind>:<id>")``, listed in the report.
        """
        options = parse(
            RowsImport,
            {
                "rows": [],
                "batch_size": batch_size,
                "existing": existing,
                "id_namespace": id_namespace,
                "first_line": first_line,
            },
        )
        started = time.monotonic()
        with self._db.read() as connection:
            self._project_id(connection, project)  # before reading any row
        ids = Ids(options.id_namespace or IMPORT_NAMESPACE)
        limits = Limits(self._settings.max_content_bytes, self._settings.max_metadata_bytes)
        written: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        count = batches = embedded = 0
        batch: list[Line] = []
        pending_lines = lines(rows, options.first_line)
        while True:
            line = next(pending_lines, None)
            if line is not None:
                batch.append(line)
                count += 1
            if batch and (line is None or len(batch) == options.batch_size):
                try:
                    done = self._batch(batch, limits, ids, options.existing, project)
                except RowProblems as found:
                    raise _after(found, batch, batches) from None
                except CtxbaseError as error:
                    raise _after(error, batch, batches) from None
                written.update(done[0])
                skipped.update(done[1])
                embedded += done[2]
                batches += 1
                batch = []
            if line is None:
                break
        return ImportReport(
            project=project,
            rows=count,
            written=dict(written),
            skipped=dict(skipped),
            batches=batches,
            embedded=embedded,
            ids=ids.mapped,
            seconds=round(time.monotonic() - started, 3),
        )

    def _batch(
        self, batch: list[Line], limits: Limits, ids: Ids, existing: str, project: str
    ) -> tuple[Counter[str], Counter[str], int]:
        """Write one batch, all or nothing: (written, skipped, vectors) counts."""
        parsed: list[Parsed] = []
        problems: list[dict[str, Any]] = []
        for line in batch:
            try:
                parsed.append(parse_line(line, limits))
            except RowProblems as bad:
                problems += bad.problems
        if problems:
            raise RowProblems(problems)
        pending, problems = plan(parsed, ids)
        if problems:
            raise RowProblems(problems)
        vectors = self._vectors(pending, project)
        now = utcnow()
        with self._db.connect(write=True) as connection:
            project_id = self._project_id(connection, project)
            tenant_id = connection.execute(
                select(projects_table.c.tenant_id).where(projects_table.c.id == project_id)
            ).scalar_one()
            checks = BatchChecks(connection, self._db.backend, project, project_id, existing)
            checked = checks.run(pending)
            if checked.problems:
                found = sorted(checked.problems, key=lambda p: p["line"])
                raise RowProblems(found, _SKIP if checked.exists else None)
            embeddings = self._store.embeddings
            stored = BatchWrites(connection, self._db, embeddings, project_id, tenant_id, now)
            vector_count = stored.run(checked, vectors)
        if checked.of_kind("event"):
            self._store.notifier.notify(project_id)
        return (
            Counter(p.kind for p in checked.write),
            Counter(p.kind for p in checked.skipped),
            vector_count,
        )

    def _vectors(self, pending: list[Pending], project: str) -> LineVectors:
        """Vectors of the batch's texts, computed before its transaction as every write
        does (rows skipped later cost a cache lookup)."""
        models: dict[str, str | None] = {}
        by_line: dict[int, Any] = {}
        texts: dict[int, str] = {}
        for kind in EMBEDDED:
            rows = [p for p in pending if p.kind == kind]
            if not rows:
                continue
            written = self._embedding_texts(kind, rows, project)
            vectors = self._store.embeddings.vectors_for(kind, written)
            models[kind] = vectors.model
            numbers = [p.parsed.number for p in rows]
            by_line.update(zip(numbers, vectors.values, strict=True))
            texts.update(zip(numbers, written, strict=True))
        return LineVectors(models, by_line, texts)

    def _embedding_texts(self, kind: str, rows: list[Pending], project: str) -> list[str]:
        """What each row is embedded from: messages after the turns before them, those of
        the batch (in line order, which is position order) and the last ones stored."""
        window = self._store.embeddings.message_context if kind == "message" else 0
        if not window:
            return [p.row.content for p in rows]
        by_conversation: dict[uuid.UUID | None, list[int]] = {}
        for index, p in enumerate(rows):
            by_conversation.setdefault(p.refs.get("conversation_id"), []).append(index)
        with self._db.read() as connection:
            stored = turns.last_turns(
                connection,
                [c for c in by_conversation if c is not None],
                window,
                self._project_sql(project),
            )
        texts = [""] * len(rows)
        for conversation_id, indexes in by_conversation.items():
            made = turns.embedding_texts(
                [turns.Turn.of(rows[i].row) for i in indexes],
                stored.get(conversation_id, []) if conversation_id else [],
                window,
            )
            for index, text in zip(indexes, made, strict=True):
                texts[index] = text
        return texts


def _after(error: CtxbaseError | RowProblems, batch: list[Line], batches: int) -> CtxbaseError:
    """``error`` saying what of the import was written: nothing of this batch, all of the
    earlier ones."""
    span = f"lines {batch[0].number} to {batch[-1].number}"
    said = f" Nothing of this batch ({span}) was written"
    said += f"; the {batches} batch(es) before it were." if batches else "."
    continuing = _CONTINUE if batches else None
    if isinstance(error, RowProblems):
        return rows_error(error.problems, said, error.hint or continuing)
    try:
        copy = type(error)(
            error.message + said, details=error.details, hint=error.hint or continuing
        )
    except TypeError:  # an error class of its own making: as it is
        return error
    copy.__cause__ = error.__cause__
    return copy
