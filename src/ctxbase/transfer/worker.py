"""A second process loading some tables of a migration job while the first loads the rest.

The client's work on a page (reading it, hashing it for the verification, encoding it for
``COPY``) is Python holding the interpreter's lock, so one process keeps one core busy at
most, and a job into PostgreSQL waits on it for most of its run. The embeddings table, the
heaviest of a store by far (a vector per row), is therefore loaded by a process of its own
while the job's process loads the other tables.

Both write the job's record: each batch still commits its rows with its checkpoint, and
each process writes only its own tables' checkpoints and counts into the record, under its
row lock (see ``JobRecord.write``). The worker is bound to die with the job's process
(Linux's parent-death signal), so a job killed at any point is resumed as before.

The worker is forked when the job's process runs no other thread (a fork copies only the
calling thread, and a lock another thread held would stay held in the child): it starts
at once, with everything imported. Otherwise it is a fresh interpreter (``python -m
ctxbase.transfer.worker``, 0.5 s of imports), which reads its request as one JSON line on
its standard input (so the URLs stay out of the process list), then ``cancel`` or the end
of its input as a request to stop after its current batch, and answers with one JSON line
on its standard output. Either way it ends with ``{"status": "loaded" | "cancelled" |
"failed", "error": ...}``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from multiprocessing.connection import Connection
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ctxbase.transfer.migration import Migration

#: Tables a worker process loads, when the job can have one (see ``Migration``).
WORKER_TABLES = ("embeddings",)
_PR_SET_PDEATHSIG = 1
_SIGKILL = 9
_NOT_PASSED = {"secret_key", "embedder_api_key", "database_url", "redis_url"}


class CancelFlag(Protocol):
    """What a job is told to stop by: a ``threading.Event``, or a worker's process-shared one."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Worker:
    """The job's side of a worker process: cancel it, wait for its end."""

    tables: list[str]

    def running(self) -> bool:
        raise NotImplementedError

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the worker's answer; whether it came."""
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def result(self) -> dict[str, Any]:
        """Wait for the worker's end: its answer, or why it has none."""
        raise NotImplementedError

    def stop(self) -> None:
        """Cancel the worker if it still runs, and wait for it."""
        if self.running():
            self.cancel()
        self.result()


def start_worker(migration: Migration, tables: list[str]) -> Worker:
    """A worker loading ``tables`` of ``migration``'s job (raises OSError if none starts)."""
    request = {
        "source": migration.source.url,
        "target": migration.target.url,
        "job_id": str(migration.job_id),
        "tables": tables,
        "parent": os.getpid(),
        # (its pools and timeouts; not a secret, nor a URL that might hold a password)
        "settings": migration.settings.model_dump(mode="json", exclude=_NOT_PASSED),
    }
    if _can_fork():
        return ForkedWorker(request)
    return SpawnedWorker(request)


def _can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


class ForkedWorker(Worker):
    def __init__(self, request: dict[str, Any]) -> None:
        self.tables = request["tables"]
        context = multiprocessing.get_context("fork")
        self._cancel = context.Event()
        self._answers, answer = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_forked_main,
            args=(request, self._cancel, answer),
            name="ctxbase-worker",
            daemon=True,
        )
        # The child never collects what it inherits: garbage of the job's process still
        # awaiting collection (a driver connection, say) would otherwise be finalized in
        # the child too, closing what the job's process still uses.
        gc.freeze()
        try:
            self.process.start()
        finally:
            gc.unfreeze()
        answer.close()
        self._result: dict[str, Any] | None = None

    def running(self) -> bool:
        return self.process.is_alive()

    def wait(self, timeout: float) -> bool:
        return self._answers.poll(timeout) or not self.running()

    def cancel(self) -> None:
        self._cancel.set()

    def result(self) -> dict[str, Any]:
        if self._result is None:
            try:
                answer = self._answers.recv()
            except EOFError:
                answer = None
            self.process.join()
            self._answers.close()
            self._result = _answer_or_death(answer, f"exit status {self.process.exitcode}")
        return self._result


class SpawnedWorker(Worker):
    def __init__(self, request: dict[str, Any]) -> None:
        self.tables = request["tables"]
        # Its diagnostics go to a file: a pipe nobody reads until the end could fill up.
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in result())
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ctxbase.transfer.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                text=True,
            )
        except OSError:
            self._stderr.close()
            raise
        self._send(json.dumps(request))
        self._result: dict[str, Any] | None = None

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):  # the worker has already ended
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def cancel(self) -> None:
        self._send("cancel")

    def result(self) -> dict[str, Any]:
        if self._result is None:
            stdout, _ = self.process.communicate()
            lines = [line for line in stdout.splitlines() if line.strip()]
            try:
                answer = json.loads(lines[-1]) if lines else None
            except ValueError:
                answer = None
            self._stderr.seek(0)
            said = self._stderr.read().strip().splitlines()[-1:]
            self._stderr.close()
            why = said[0] if said else f"exit status {self.process.returncode}"
            self._result = _answer_or_death(answer, why)
        return self._result


def _answer_or_death(answer: Any, why: str) -> dict[str, Any]:
    if isinstance(answer, dict) and "status" in answer:
        return answer
    return {"status": "failed", "error": f"the worker process died: {why}"}


# --- the worker's side ---------------------------------------------------------------------


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when the job's process dies (a SIGKILL included)."""
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


def run(request: dict[str, Any], cancel: CancelFlag) -> dict[str, Any]:
    """Load the request's tables; the answer to send back."""
    from ctxbase.config import Settings
    from ctxbase.errors import CtxbaseError
    from ctxbase.transfer.endpoints import open_endpoint, require_head
    from ctxbase.transfer.migration import Migration

    settings = Settings.from_values(**request["settings"])
    endpoints = []
    try:
        source = open_endpoint(request["source"], settings, role="source")
        endpoints.append(source)
        target = open_endpoint(request["target"], settings, role="target")
        endpoints.append(target)
        for endpoint, role in ((source, "source"), (target, "target")):
            require_head(endpoint, role)  # (and learns how it stores vectors)
        migration = Migration(
            source, target, uuid.UUID(request["job_id"]), settings=settings, cancel=cancel
        )
        loaded = migration.load_as_worker(request["tables"])
        return {"status": "loaded" if loaded else "cancelled"}
    except CtxbaseError as error:
        return {"status": "failed", "error": f"{error.code}: {error}"}
    finally:
        for endpoint in endpoints:
            endpoint.close()


def _forked_main(request: dict[str, Any], cancel: CancelFlag, answer: Connection) -> None:
    _die_with_parent(request["parent"])
    try:
        result = run(request, cancel)
    except BaseException as error:  # a bug: say it, rather than die without a word
        result = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
    answer.send(result)
    answer.close()


def _watch_input(stream: IO[str], cancel: threading.Event) -> None:
    """``cancel`` once the job asks, or once its end of the pipe is closed."""
    for line in stream:
        if line.strip() == "cancel":
            break
    cancel.set()


def main() -> None:
    request = json.loads(sys.stdin.readline())
    _die_with_parent(int(request["parent"]))
    cancel = threading.Event()
    threading.Thread(target=_watch_input, args=(sys.stdin, cancel), daemon=True).start()
    result = run(request, cancel)
    print(json.dumps(result), flush=True)
    os._exit(0 if result["status"] != "failed" else 1)


if __name__ == "__main__":
    main()
