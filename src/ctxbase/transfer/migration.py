"""Copying tables between two databases: batches, checkpoints, an error log, verification.

A job copies its tables parents first, each in primary-key order, ``batch_size`` rows at a
time. Every batch is one transaction on the target holding the rows *and* the job's
checkpoint (last key, rows, failed keys), so a job stopped at any moment (crash, SIGKILL,
cancel) resumes after its last committed batch. A row that cannot be read or written goes
to the error log; the rest continue. The job ends with a verification: per table, the
source's rows (less the failed ones) against the target's, by count and checksum.

On a PostgreSQL target, the tables are loaded without their secondary indexes and foreign
keys (see ``indexes`` and ``foreign_keys``). Each loaded table is finished in the
background while the next one loads: its foreign keys added back (every row checked in one
pass), its indexes built, its checksum computed by the server. A table whose rows point at
nothing is left for after the load, when its orphans are logged and removed. There, too,
the embeddings table is loaded by a second process beside the others (see ``worker``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Connection, func, or_, select
from sqlalchemy.exc import IntegrityError

from ctxbase.config import Settings
from ctxbase.db.schema import utcnow
from ctxbase.errors import ConflictError, CtxbaseError, DatabaseError
from ctxbase.secrets import Secrets
from ctxbase.transfer import foreign_keys, indexes, jobs
from ctxbase.transfer.canonical import Checksum, RowRenderer
from ctxbase.transfer.endpoints import Endpoint
from ctxbase.transfer.postgres import PostgresCopyWriter
from ctxbase.transfer.reading import Page, TableReader
from ctxbase.transfer.report import MigrationReport, Progress, TableVerification, Verification
from ctxbase.transfer.tables import TablePlan, plan_tables, steps
from ctxbase.transfer.verify import table_checksum
from ctxbase.transfer.worker import WORKER_TABLES, CancelFlag, Worker, start_worker
from ctxbase.transfer.writing import (
    CoreInsertWriter,
    LinkWriter,
    PageWriter,
    RowFailure,
    RowWriter,
    prepare_page,
    write_page,
)

log = logging.getLogger("ctxbase.transfer")

ProgressCallback = Callable[[MigrationReport], None]
DEFAULT_BATCH_SIZE = 2000
#: Keys of failed rows kept per table, so verification can leave them out of the source.
FAILED_KEYS_LIMIT = 10_000
#: Columns of the job's record that a worker process writes too, each its own tables'.
_SHARED = ("checkpoints", "migrated", "failed", "error_log")
#: How often the job's process reads the worker's progress while it waits for it.
_FOLLOW_SECONDS = 0.2


class Migration:
    """One job between two open endpoints; :meth:`run` copies, verifies and reports."""

    def __init__(
        self,
        source: Endpoint,
        target: Endpoint,
        job_id: uuid.UUID,
        *,
        settings: Settings,
        on_progress: ProgressCallback | None = None,
        cancel: CancelFlag | None = None,
    ) -> None:
        self.source, self.target, self.job_id = source, target, job_id
        self.settings = settings
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        with target.db.connect() as connection:
            self.job = jobs.load_job(connection, job_id)
        self.plans = plan_tables(self.job["tables"])
        self.batch_size = int(self.job["options"].get("batch_size", DEFAULT_BATCH_SIZE))
        self._rows_before_run = self._rows_done()
        self._run_started = time.monotonic()
        #: The steps this process writes while another writes the rest of the job (a
        #: worker, or the job's process for a worker); None when it is alone.
        self._mine: frozenset[str] | None = None
        #: Held while the job's options are rewritten (background threads drop from them).
        self._options_lock = threading.Lock()

    # --- creating -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        source: Endpoint,
        target: Endpoint,
        *,
        tables: Sequence[str] | None,
        batch_size: int,
        reembed: bool,
        settings: Settings,
        job_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Record a new pending job in the target (which must hold none of its tables' rows)."""
        plans = plan_tables(tables)
        _require_empty(target, plans)
        with source.db.read() as connection:
            totals = {p.name: _count(connection, p) for p in plans}
        secrets = Secrets(settings)
        names = [p.name for p in plans]
        with target.db.connect(write=True) as connection:
            options: dict[str, Any] = {"batch_size": batch_size, "reembed": reembed}
            if target.db.backend == "postgresql":  # both back once the rows are in
                # (an empty table keeps them: nothing to load, nothing to build again)
                loaded = [name for name in names if totals[name]]
                options["deferred_indexes"] = indexes.set_aside(connection, loaded)
                options["deferred_foreign_keys"] = foreign_keys.set_aside(connection, loaded)
            return jobs.create_job(
                connection,
                {
                    "id": job_id,
                    "source": source.describe(),
                    "target": target.describe(),
                    "source_encrypted": secrets.encrypt(source.url) if source.url else None,
                    "target_encrypted": secrets.encrypt(target.url) if target.url else None,
                    "tables": names,
                    "options": options,
                    "totals": totals,
                },
            )

    # --- running --------------------------------------------------------------------------

    def run(self) -> MigrationReport:
        """Copy what is left, verify, and return the final report. A failure during the
        copy does not raise: the job records it as ``failed``, ready to be resumed."""
        self._save(status="running", started_at=self.job["started_at"] or utcnow())
        try:
            loaded = False
            with _Finisher(self) as finisher, self._start_worker() as worker:
                theirs = [p for p in self.plans if worker is not None and p.name in worker.tables]
                for plan in self.plans:
                    if plan in theirs:
                        continue  # loaded by the worker meanwhile
                    # A self-reference points into its own table: linked once it is loaded.
                    if not self._copy(plan) or (plan.self_references and not self._link(plan)):
                        break
                    finisher.loaded(plan)
                else:
                    if worker is None or self._follow(worker):
                        for plan in theirs:  # now loaded too
                            finisher.loaded(plan)
                        finisher.wait()
                        loaded = True
            if not loaded:
                return self._finish("cancelled")
            for plan in self.plans:  # what the background left: tables with orphans
                self._restore_foreign_keys(plan, remove_orphans=True)
            self._build_indexes()
            verification = self._verify(finisher.checksums)
            self._save(verification=verification.model_dump(mode="json"), current_table=None)
            if self.job["options"].get("reembed"):
                self._reembed()
        except CtxbaseError as error:
            log.error("Migration %s failed: %s", self.job_id, error)
            self._log_error(None, None, f"{error.code}: {error}")
            return self._finish("failed")
        failed = bool(self.job["error_log"]) or not verification.passed
        return self._finish("completed_with_errors" if failed else "completed")

    def _copy(self, plan: TablePlan) -> bool:
        """Copy one table's rows after its checkpoint; False when cancelled."""
        if self._nothing_to_copy(plan, plan.name):
            return True
        # Self-references are left empty here and filled in by the link pass.
        columns = [c for c in plan.table.columns if c.key not in plan.self_references]
        reader = TableReader(self.source.db, plan, columns)
        single = CoreInsertWriter(plan.table, columns)
        # SQLite's stored rows are hashed as they go by, while the server loads the previous
        # page; other sources are checksummed by their own server at the end.
        hasher = None
        if self.source.db.backend == "sqlite" and not plan.self_references:
            hasher = RowRenderer.for_sqlite(columns)
        bulk = self._bulk_writer(plan, columns)
        return self._copy_pages(plan, plan.name, reader, bulk, single, hasher)

    def _link(self, plan: TablePlan) -> bool:
        """Fill in the self-referencing columns, now that every row they point at is there."""
        if self._nothing_to_copy(plan, plan.link_step):
            return True
        refs = [plan.table.c[name] for name in plan.self_references]
        reader = TableReader(
            self.source.db, plan, [plan.key, *refs], where=or_(*(c.is_not(None) for c in refs))
        )
        writer = LinkWriter(plan.table, plan.key, refs)
        return self._copy_pages(plan, plan.link_step, reader, writer, writer)

    def _nothing_to_copy(self, plan: TablePlan, step: str) -> bool:
        """Whether ``step`` has not started and its table is empty in the source: then it
        is done at once, with one save (most tables of a store are empty, or nearly)."""
        state = self._checkpoint(step)
        if state["done"] or state["after"] is not None:
            return False
        with self.source.db.read() as connection:
            if _has_rows(connection, plan):
                return False
        state["done"] = True
        counts: dict[str, Any] = {}
        if step in self.job["totals"]:  # a table, not a link pass: it reports its 0 rows
            counts = {
                "migrated": {**self.job["migrated"], step: 0},
                "failed": {**self.job["failed"], step: 0},
            }
        self._save(current_table=step, checkpoints=self.job["checkpoints"], **counts)
        return True

    def _copy_pages(
        self,
        plan: TablePlan,
        step: str,
        reader: TableReader,
        bulk: PageWriter,
        single: RowWriter,
        hasher: RowRenderer | None = None,
    ) -> bool:
        """Page through ``reader`` after the step's checkpoint; False when cancelled."""
        state = self._checkpoint(step)
        if state["done"]:
            return True
        self._save(current_table=step)
        if hasher is not None:
            state.setdefault("checksum", Checksum().to_json())
        after = _key_from_json(plan, state["after"])
        # One thread writes page N (COPY, the server's work, the commit) while this one
        # reads and prepares page N + 1: the two cores of a small machine both work.
        with ThreadPoolExecutor(1, thread_name_prefix="ctxbase-migrate") as writer:
            pending: Future[None] | None = None
            while not self.cancel.is_set():
                with self.source.db.read() as connection:
                    page = reader.page(connection, after, self.batch_size)
                if not page.raw:
                    break
                prepared = prepare_page(bulk, page)
                digests = hasher.digests_or_none(page.raw, page.columns) if hasher else None
                if pending is not None:
                    pending.result()
                pending = writer.submit(
                    self._write_page, step, bulk, single, page, prepared, digests
                )
                after = page.last_key
            if pending is not None:
                pending.result()
        if self.cancel.is_set():
            return False
        state["done"] = True
        self._save(checkpoints=self.job["checkpoints"])
        return True

    def _write_page(
        self,
        step: str,
        bulk: PageWriter,
        single: RowWriter,
        page: Page,
        prepared: Any,
        digests: list[bytes | None] | None,
    ) -> None:
        with self.target.db.connect(write=True) as connection:
            if self.target.db.backend == "postgresql":
                # A commit lost to a crash is redone on resume: its checkpoint is lost too.
                connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
            failures = write_page(connection, bulk, single, page, prepared)
            if digests is not None:
                self._add_to_checksum(step, page, failures, digests)
            self._record_page(connection, step, page, failures)
        self._notify()

    def _add_to_checksum(
        self, step: str, page: Page, failures: list[RowFailure], digests: list[bytes | None]
    ) -> None:
        """Add the rows that arrived to the source checksum kept in the checkpoint."""
        state = self.job["checkpoints"][step]
        checksum = Checksum.from_json(state["checksum"])
        failed = {failure.key for failure in failures}
        arrived: list[bytes] = []
        for raw, digest in zip(page.raw, digests, strict=True):
            if failed and page.reader.key_of(raw) in failed:
                continue
            if digest is None:  # written, yet not renderable: verification will say so
                checksum.rows += 1
                continue
            arrived.append(digest)
        checksum.add_digests(arrived)
        state["checksum"] = checksum.to_json()

    def _bulk_writer(self, plan: TablePlan, columns: Sequence[Column[Any]]) -> PageWriter:
        if self.target.db.backend != "postgresql":
            return CoreInsertWriter(plan.table, columns)
        from_sqlite = self.source.db.backend == "sqlite"
        with self.target.db.connect() as connection:
            return PostgresCopyWriter(connection, plan.table, columns, from_sqlite=from_sqlite)

    def _record_page(
        self, connection: Connection, step: str, page: Page, failures: list[RowFailure]
    ) -> None:
        """Advance the checkpoint in the page's own transaction on the target."""
        state = self._record_failures(step, failures)
        state.update(
            after=_key_to_json(page.last_key), rows=state["rows"] + len(page) - len(failures)
        )
        self._save_checkpoint(connection, step, progress=self._percent())

    def _record_failures(self, step: str, failures: list[RowFailure]) -> dict[str, Any]:
        """Log ``failures`` and count them in the step's checkpoint, which is returned."""
        state = self._checkpoint(step)
        for failure in failures:
            self._log_error(step, failure.key, failure.error)
            if len(state["failed_keys"]) < FAILED_KEYS_LIMIT:
                state["failed_keys"].append(_key_to_json(failure.key))
        state["failed"] += len(failures)
        return state

    def _save_checkpoint(self, connection: Connection, step: str, **more: Any) -> None:
        """Save the step's checkpoint, the counts and the error log, in ``connection``'s
        transaction (the one that wrote what they count)."""
        if step in self.job["totals"]:  # a table, not a link pass
            state = self.job["checkpoints"][step]
            self.job["migrated"][step] = state["rows"]
            self.job["failed"][step] = state["failed"]
        values = {
            "checkpoints": self.job["checkpoints"],
            "migrated": self.job["migrated"],
            "failed": self.job["failed"],
            "error_log": self.job["error_log"],
            **more,
        }
        self._write(connection, values)

    # --- verification and re-embedding ----------------------------------------------------

    def _verify(self, computed: dict[str, Checksum]) -> Verification:
        """Each table, source against target: rows and checksums, less the failed rows.
        ``computed``: target checksums taken in the background once a table was final."""
        with ThreadPoolExecutor(2, thread_name_prefix="ctxbase-verify") as pool:
            targets: dict[str, Future[Checksum]] = {}
            for plan in self.plans:
                if self.target.db.backend == "postgresql" and plan.name not in computed:
                    # the server computes them meanwhile, and several at once
                    targets[plan.name] = pool.submit(table_checksum, self.target.db, plan)
                    continue
                # (a single-connection SQLite target must not be read by two threads)
                done: Future[Checksum] = Future()
                done.set_result(computed.get(plan.name) or table_checksum(self.target.db, plan))
                targets[plan.name] = done
            return self._compare(targets)

    def _compare(self, targets: dict[str, Future[Checksum]]) -> Verification:
        tables = {}
        for plan in self.plans:
            self._save(current_table=f"verifying {plan.name}")
            state = self._checkpoint(plan.name)
            failed = [_key_from_json(plan, key) for key in state["failed_keys"]]
            complete = len(failed) == state["failed"]  # every failed key was kept
            if "checksum" in state:  # hashed while copying: the source must still match it
                source = Checksum.from_json(state["checksum"])
                with self.source.db.read() as connection:
                    complete = complete and _count(connection, plan) - len(failed) == source.rows
            else:
                source = table_checksum(self.source.db, plan, failed)
            target = targets[plan.name].result()
            equal = complete and source.rows == target.rows and source.hex == target.hex
            if not equal:
                self._log_error(plan.name, None, "verification: the target differs from the source")
            tables[plan.name] = TableVerification(
                source_rows=source.rows + len(failed),
                skipped_rows=state["failed"],
                target_rows=target.rows,
                source_checksum=source.hex,
                target_checksum=target.hex,
                equal=equal,
            )
        return Verification(passed=all(t.equal for t in tables.values()), tables=tables)

    def _reembed(self) -> None:
        from ctxbase.store import Store

        store = self.target.store
        if store is None:
            if self.target.url is None:
                self._log_error(None, None, "re-embedding needs a target reachable by URL")
                return
            store = Store(
                settings=self.settings.model_copy(update={"database_url": self.target.url})
            )
        try:
            model = store.embeddings.model
            if model is None:
                self._log_error(None, None, "re-embedding needs an embedder (CTXBASE_EMBEDDER)")
                return
            self._save(current_table=f"re-embedding with {model}")
            store.embeddings.reembed(model)
        finally:
            if store is not self.target.store:
                store.close()

    # --- bookkeeping ----------------------------------------------------------------------

    def _checkpoint(self, step: str) -> dict[str, Any]:
        empty: dict[str, Any] = {
            "after": None,
            "rows": 0,
            "failed": 0,
            "failed_keys": [],
            "done": False,
        }
        state: dict[str, Any] = self.job["checkpoints"].setdefault(step, empty)
        return state

    def _log_error(self, table: str | None, key: Any, message: str) -> None:
        self.job["error_log"] = [
            *self.job["error_log"],
            {
                "table": table,
                "key": None if key is None else str(key),
                "error": message,
                "at": utcnow().isoformat(),
            },
        ][: jobs.ERROR_LOG_LIMIT]

    def _percent(self) -> float:
        total = sum(self.job["totals"].values())
        done = sum(
            self.job["migrated"].get(p.name, 0) + self.job["failed"].get(p.name, 0)
            for p in self.plans
        )
        return 100.0 if total == 0 else min(100.0, round(100.0 * done / total, 2))

    def _save(self, **values: Any) -> None:
        with self.target.db.connect(write=True) as connection:
            self._write(connection, values)
        self._notify()

    def _write(self, connection: Connection, values: dict[str, Any]) -> None:
        """Save ``values`` into the job's record, in ``connection``'s transaction. While
        another process writes other steps of the job, this one's steps are merged into the
        record as it stands, under its row lock: each writes only its own."""
        self.job.update(values)
        if self._mine is not None and any(column in values for column in _SHARED):
            self._merge(jobs.lock_job(connection, self.job_id), self._mine)
            values = {**values, **{c: self.job[c] for c in _SHARED}}
            if "progress" in values:
                values["progress"] = self.job["progress"] = self._percent()
        jobs.save_job(connection, self.job_id, **values)

    def _merge(self, recorded: dict[str, Any], mine: frozenset[str]) -> None:
        """Take the steps not in ``mine`` (checkpoints and counts) from ``recorded``, and
        every error logged there."""
        for column in ("checkpoints", "migrated", "failed"):
            own = {key: value for key, value in self.job[column].items() if key in mine}
            self.job[column] = {**recorded[column], **own}
        logged = list(recorded["error_log"])
        self.job["error_log"] = [
            *logged,
            *(entry for entry in self.job["error_log"] if entry not in logged),
        ][: jobs.ERROR_LOG_LIMIT]

    # --- a worker process ----------------------------------------------------------------

    @contextmanager
    def _start_worker(self) -> Iterator[Worker | None]:
        """A worker loading the embeddings table beside this process, when the job can
        have one: a PostgreSQL target, both ends reachable by URL, Linux (where the worker
        dies with this process), and rows left to load. Stopped when the block ends."""
        tables = [
            plan.name
            for plan in self.plans
            if plan.name in WORKER_TABLES and not self._checkpoint(plan.name)["done"]
        ]
        if (
            not tables
            or self.target.db.backend != "postgresql"
            or self.source.url is None
            or self.target.url is None
            or sys.platform != "linux"
            or not any(self.job["totals"].get(name) for name in tables)
        ):
            yield None
            return
        self._mine = frozenset(s for s in steps(self.plans) if s not in tables)
        try:
            worker = start_worker(self, tables)
        except OSError as error:  # no interpreter to start: this process loads them all
            log.warning("Migration %s loads every table itself: %s", self.job_id, error)
            self._mine = None
            yield None
            return
        try:
            yield worker
        finally:
            worker.stop()

    def _follow(self, worker: Worker) -> bool:
        """Wait for the worker's end, passing its progress on meanwhile; then take its
        tables back. False if it was cancelled; raises if it failed."""
        while not worker.wait(_FOLLOW_SECONDS):
            if self.cancel.is_set():
                worker.cancel()
                break
            self._read_back()
            self._notify()
        result = worker.result()
        self._read_back()
        self._mine = None
        if result["status"] == "failed":
            raise DatabaseError(f"Loading {', '.join(worker.tables)}: {result.get('error')}")
        return result["status"] == "loaded"

    def _read_back(self) -> None:
        """The worker's steps as recorded (its batches commit them with its rows)."""
        with self.target.db.read() as connection:
            recorded = jobs.load_job(connection, self.job_id)
        assert self._mine is not None
        self._merge(recorded, self._mine)
        self.job["progress"] = self._percent()

    def load_as_worker(self, tables: list[str]) -> bool:
        """Load ``tables`` as the job's worker process; False if cancelled. Writes only
        their steps into the job's record (the job's process writes the rest meanwhile)."""
        plans = [plan for plan in self.plans if plan.name in tables]
        self._mine = frozenset(steps(plans))
        return all(self._copy(plan) for plan in plans)

    def _build_indexes(self, table: str | None = None) -> None:
        """Build the indexes set aside for the load, of ``table`` or all (before
        verification, so a failure to build one fails the job)."""
        while pending := self._deferred("deferred_indexes", table):
            index = pending[0]
            if table is None:  # the background builds say nothing
                self._save(current_table=f"indexing {index['table']}")
            self._build_index(index)

    def _build_index(self, index: dict[str, Any]) -> None:
        with self.target.db.connect(write=True) as connection:
            indexes.build(connection, index)
        self._done("deferred_indexes", index)

    def _restore_foreign_keys(self, plan: TablePlan, *, remove_orphans: bool) -> bool:
        """Add back the foreign keys of ``plan``'s table set aside for the load, each
        checking every row; False if one cannot be added, rows pointing at nothing and
        ``remove_orphans`` false. With it, such rows are logged as failed and removed
        first (only while nothing else writes to the job)."""
        for key in self._deferred("deferred_foreign_keys", plan.name):
            with self.target.db.connect(write=True) as connection:
                try:
                    with connection.begin_nested():
                        foreign_keys.restore(connection, key)
                except IntegrityError:
                    if not remove_orphans:
                        return False
                    self._save(current_table=f"checking {plan.name}")
                    self._remove_orphans(connection, plan, key)
                    foreign_keys.restore(connection, key)
            self._done("deferred_foreign_keys", key)
        return True

    def _remove_orphans(self, connection: Connection, plan: TablePlan, key: dict[str, Any]) -> None:
        """Log and delete the rows of ``plan``'s table that ``key`` finds pointing at
        nothing, as failed rows, in the transaction that then adds ``key``."""
        orphans = foreign_keys.orphans(connection, key, plan.key.name)
        if not orphans:
            return
        connection.execute(plan.table.delete().where(plan.key.in_(orphans)))
        error = foreign_keys.describe_orphan(key)
        state = self._record_failures(plan.name, [RowFailure(o, error) for o in orphans])
        state["rows"] -= len(orphans)
        if "checksum" in state:  # hashed while copied: take the rows out of the sum again
            state["checksum"] = self._without(plan, state["checksum"], orphans)
        self._save_checkpoint(connection, plan.name)

    def _without(
        self, plan: TablePlan, checksum: dict[str, int], keys: list[Any]
    ) -> dict[str, int]:
        """The source checksum ``checksum`` less the rows keyed ``keys``, read again from
        the source (decoded: the canonical form is the same)."""
        columns = [c for c in plan.table.columns if c.key not in plan.self_references]
        renderer = RowRenderer.for_decoded(columns)
        result = Checksum.from_json(checksum)
        with self.source.db.read() as connection:
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                rows = connection.execute(select(*columns).where(plan.key.in_(chunk))).all()
                for digest in renderer.digests_or_none([tuple(row) for row in rows]):
                    result.remove(digest)
        return result.to_json()

    def _deferred(self, option: str, table: str | None) -> list[dict[str, Any]]:
        with self._options_lock:
            items = self.job["options"].get(option) or []
            return [item for item in items if table is None or item["table"] == table]

    def _done(self, option: str, item: dict[str, Any]) -> None:
        """Drop ``item``, now in place in the target, from the job's ``option`` list. (In a
        transaction of its own: building it again on resume is harmless.)"""
        with self._options_lock, self.target.db.connect(write=True) as connection:
            remaining = [x for x in self.job["options"].get(option) or [] if x != item]
            options = {**self.job["options"], option: remaining}
            jobs.save_job(connection, self.job_id, options=options)
            self.job["options"] = options

    def _finish(self, status: str) -> MigrationReport:
        if status in ("cancelled", "failed"):  # leave the target usable meanwhile
            try:
                self._build_indexes()
                for plan in self.plans:  # parents first; none after one that cannot
                    if not self._restore_foreign_keys(plan, remove_orphans=False):
                        break
            except CtxbaseError as error:
                log.warning("Indexes of migration %s not built yet: %s", self.job_id, error)
        values: dict[str, Any] = {
            "status": status,
            "finished_at": utcnow(),
            "error_log": self.job["error_log"],
        }
        if status in ("completed", "completed_with_errors"):
            values["progress"] = 100.0
        self._save(**values)
        return self.report()

    def _rows_done(self) -> int:
        return sum(self.job["migrated"].values()) + sum(self.job["failed"].values())

    def progress(self) -> Progress:
        elapsed = time.monotonic() - self._run_started
        run_rows = self._rows_done() - self._rows_before_run
        rate = run_rows / elapsed if elapsed > 0 and run_rows > 0 else None
        remaining = (
            sum(self.job["totals"].values())
            - sum(self.job["migrated"].values())
            - sum(self.job["failed"].values())
        )
        return Progress(
            percent=self.job["progress"],
            rows=dict(self.job["migrated"]),
            totals=dict(self.job["totals"]),
            failed=dict(self.job["failed"]),
            current_table=self.job["current_table"],
            rows_per_second=round(rate, 1) if rate else None,
            eta_seconds=round(max(remaining, 0) / rate, 1) if rate else None,
        )

    def report(self) -> MigrationReport:
        return jobs.to_report(self.job, self.progress())

    def _notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.report())


def _has_rows(connection: Connection, plan: TablePlan) -> bool:
    return connection.execute(select(plan.key).limit(1)).first() is not None


def _require_empty(target: Endpoint, plans: list[TablePlan]) -> None:
    with target.db.read() as connection:  # one connection for every table
        holding = [p.name for p in plans if _has_rows(connection, p)]
    if holding:
        raise ConflictError(
            f"The target database already holds rows in: {', '.join(holding)}",
            hint="migrate into an empty database (e.g. after `ctxbase db reset`), or resume "
            "a job with --resume",
            details={"tables": holding},
        )


def _count(connection: Connection, plan: TablePlan) -> int:
    return int(connection.execute(select(func.count()).select_from(plan.table)).scalar_one())


def _blanked(values: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    if not positions:
        return values
    row = list(values)
    for position in positions:
        row[position] = None
    return tuple(row)


def _key_to_json(key: Any) -> Any:
    return str(key) if isinstance(key, uuid.UUID) else key


def _key_from_json(plan: TablePlan, value: Any) -> Any:
    if value is None:
        return None
    return uuid.UUID(value) if plan.key.type.python_type is uuid.UUID else value


class _Finisher:
    """Finishes loaded tables of a PostgreSQL target in the background while the next
    tables load: each table's indexes built as soon as it is loaded, two at a time (a
    full-text index first: it takes longest), then its foreign keys added back, one table
    after the other in load order (parents first), while the server takes its checksum on
    a connection of its own.

    A table's keys come after its indexes: a key's check of every row is then a cheap join
    through them, where alone it scans the table once per key. Keys go back in load order,
    each table's after its own indexes, so they never wait on a lock held by an index
    build of their table or of the one they point at (built before, as a parent).

    Once a table's foreign keys cannot be added (rows pointing at nothing) the checks
    stop: that table and the later ones are finished after the load, where orphans are
    logged and removed. A checksum is only kept of a table that will not change again.
    Leaving the ``with`` block waits for what is running and drops what is not.
    """

    def __init__(self, migration: Migration) -> None:
        self.migration = migration
        self.active = migration.target.db.backend == "postgresql"
        self.indexing = ThreadPoolExecutor(2, thread_name_prefix="ctxbase-migrate-index")
        self.finishing = ThreadPoolExecutor(1, thread_name_prefix="ctxbase-migrate-finish")
        self.checksumming = ThreadPoolExecutor(1, thread_name_prefix="ctxbase-migrate-sum")
        self.futures: list[Future[None]] = []
        self.checksums: dict[str, Checksum] = {}
        self.stopped = False

    def __enter__(self) -> _Finisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped = True  # a check not started yet is left for after the load
        # (keys first: one running waits for its table's indexes, which then still build)
        for executor in (self.finishing, self.indexing, self.checksumming):
            executor.shutdown(wait=True, cancel_futures=True)

    def loaded(self, plan: TablePlan) -> None:
        if not self.active:
            return
        pending = self.migration._deferred("deferred_indexes", plan.name)
        pending.sort(key=lambda index: " USING gin " not in index["definition"])
        built = [self.indexing.submit(self._build_index, index) for index in pending]
        # The checksum is taken while indexes are built and keys added (both read the rows
        # and change none); it is kept only if the keys could be added.
        checksum = None
        if not self.stopped:
            checksum = self.checksumming.submit(table_checksum, self.migration.target.db, plan)
        self.futures += [*built, self.finishing.submit(self._add_keys, plan, built, checksum)]

    def _build_index(self, index: dict[str, Any]) -> None:
        if not self.migration.cancel.is_set():
            self.migration._build_index(index)

    def _add_keys(
        self, plan: TablePlan, built: list[Future[None]], checksum: Future[Checksum] | None
    ) -> None:
        for future in built:
            future.result()
        if checksum is None or self.stopped or self.migration.cancel.is_set():
            return
        if not self.migration._restore_foreign_keys(plan, remove_orphans=False):
            self.stopped = True
            return
        self.checksums[plan.name] = checksum.result()

    def wait(self) -> None:
        """Wait for everything submitted; raises the first error of the background."""
        for future in self.futures:
            future.result()
