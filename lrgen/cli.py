"""The `lrgen` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import catalog

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)


@app.callback()
def root() -> None:
    """Learning-rate-scheduler variants of a LEMUR model, generated with LibCST
    codemods. Exit codes: 0 ok, 1 a check failed, 2 bad input."""


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def generate(
    base: Annotated[
        Path, typer.Option(help="Base LEMUR model file.", show_default=False)
    ] = Path("base_model/resnet18.py"),
    out_dir: Annotated[
        Path, typer.Option("--out", help="Output root; variants go under "
                           "nngpt/llm/epoch/A0/synth_nn/ in it.")
    ] = Path("out"),
    epoch_max: Annotated[
        int, typer.Option(help="Epochs every schedule spans (hp.txt epoch_max).")
    ] = catalog.DEFAULT_EPOCH_MAX,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 and list the "
                           "files that would change.")
    ] = False,
) -> None:
    """Write every catalog variant of the base model, ready for NNEval."""
    from .generate import (
        SYNTH_PATH,
        BadInput,
        folder_files,
        stale_files,
        write_atomically,
    )
    from .generate import generate as build

    target = out_dir / SYNTH_PATH
    try:
        results = build(base, list(catalog.VARIANTS), epoch_max)
        files = folder_files(results)
        if check:
            stale = stale_files(target, files)
            for name in stale:
                out.print(f"would change: {target / name}", highlight=False)
            if stale:
                raise typer.Exit(1)
            out.print(f"{target} is up to date ({len(files)} files)")
            return
        write_atomically(target, files)
    except BadInput as error:
        raise fail(str(error)) from None
    table = Table(title=f"{len(results)} variants of {base} in {target}")
    for column in ("id", "name", "family", "stepping"):
        table.add_column(column)
    table.add_column("bytes", justify="right")
    for r in results:
        v = r.variant
        table.add_row(v.id, v.name, v.family, v.stepping, f"{r.bytes:,}")
    out.print(table)
    total = sum(r.bytes for r in results)
    out.print(
        f"{len(results)} variants, {total:,} bytes in all, "
        f"{total // max(len(results), 1):,} bytes on average"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
