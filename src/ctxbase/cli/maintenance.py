"""Keeping a store current: ``prune`` expired items, ``embed`` the items waiting for a
vector, ``reembed`` everything with another model."""

from __future__ import annotations

from typing import Annotated

import typer

from ctxbase.cli.common import open_store, out, progress_bars
from ctxbase.errors import CtxbaseError

commands = typer.Typer()


@commands.command()
def prune(ctx: typer.Context) -> None:
    """Delete expired memories and state entries in every project."""
    store = open_store(ctx)
    counts = store.prune()
    out.print(
        f"Deleted {counts['memories']} expired memories and {counts['state']} expired state entries"
    )


@commands.command()
def embed(
    ctx: typer.Context,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model call.")] = 256,
) -> None:
    """Embed every item still waiting for a vector of the active model."""
    store = open_store(ctx)
    model = store.embeddings.model
    if model is None:
        raise CtxbaseError("No embedder is configured", hint="set CTXBASE_EMBEDDER")
    total = sum(store.embeddings.pending().values())
    with progress_bars() as progress:
        task = progress.add_task(f"embedding with {model}", total=total)
        done = store.embeddings.backfill(
            batch_size=batch_size, progress=lambda _kind, n: progress.advance(task, n)
        )
    out.print(f"Embedded {done} item(s) with {model}")


@commands.command()
def reembed(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="e.g. openai:text-embedding-3-small")],
    drop_old: Annotated[
        bool, typer.Option("--drop-old", help="Delete other models' vectors afterwards.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model call.")] = 256,
) -> None:
    """Build MODEL's vectors beside the current ones, then switch searches to it.

    Searches keep working during the run; run it again to resume after an interruption."""
    store = open_store(ctx)
    before = store.embeddings.active_model()
    with progress_bars() as progress:
        task = progress.add_task(f"re-embedding with {model}", total=None)

        def advance(_kind: str, count: int) -> None:
            status = store.embeddings.reembed_status() or {}
            progress.update(task, total=status.get("total"), advance=count)

        job = store.embeddings.reembed(
            model, batch_size=batch_size, drop_old=drop_old, progress=advance
        )
    out.print(f"Active model: {before} → {job['model']} ({job['done']} item(s) embedded)")
