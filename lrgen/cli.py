"""The `lrgen` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import __version__, catalog

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
)
# Piped output is not cut to 80 columns: variant names stay whole.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

CIFAR10_BATCHES = 782  # 50,000 training images at batch 64
RELATIVE_BASE = Path("base_model", "resnet18.py")
PROJECT_BASE = Path(__file__).resolve().parents[1] / RELATIVE_BASE


def _version(value: bool) -> None:
    if value:
        out.print(f"lrgen {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:
    """Learning-rate-scheduler variants of a LEMUR model, generated with LibCST
    codemods. Exit codes: 0 ok, 1 a check failed, 2 bad input."""


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def generate(
    base: Annotated[
        Optional[Path],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(
            help="Base LEMUR model file [default: the project's "
            "base_model/resnet18.py].",
            show_default=False,
        ),
    ] = None,
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

    if base is None:
        base = RELATIVE_BASE if RELATIVE_BASE.is_file() else PROJECT_BASE
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


DEFAULT_SYNTH = Path("out", "nngpt", "llm", "epoch", "A0", "synth_nn")


@app.command()
def validate(
    synth_dir: Annotated[
        Path,
        typer.Argument(help="A folder of generated variants (A0_NNN/new_nn.py, "
                       "hp.txt)."),
    ] = DEFAULT_SYNTH,
    draws: Annotated[
        int, typer.Option(help="Random hyperparameter draws per variant.")
    ] = 25,
    seed: Annotated[int, typer.Option(help="Seed of the draws.")] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    timeout: Annotated[
        float, typer.Option(help="Seconds one variant may take.")
    ] = 120.0,
    json_file: Annotated[
        Optional[Path],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option("--json", help="Also write the results to this file."),
    ] = None,
) -> None:
    """Prove every variant: NNEval's static checks, build, the rate against the
    closed form, random search draws, the per-batch budget, resume; exit 1 if
    anything fails."""
    from rich.progress import Progress

    from .validate import CHECKS, variant_folders
    from .validate import validate as run

    if not synth_dir.is_dir() or not variant_folders(synth_dir):
        raise fail(f"{synth_dir}: no variant folders (A0_NNN/new_nn.py) in it; "
                   "pass the synth_nn folder lrgen generate wrote")
    if draws < 1 or workers < 1 or timeout <= 0:
        raise fail("--draws and --workers must be at least 1, --timeout above 0")
    total = len(variant_folders(synth_dir))
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("validating", total=total)
        report = run(
            synth_dir, draws=draws, seed=seed, timeout=timeout, workers=workers,
            progress=lambda r: progress.update(
                task, advance=1, description=f"{r.folder} {r.name}"
            ),
        )
    table = Table(title=f"lrgen validate {synth_dir}")
    table.add_column("variant", no_wrap=True)
    for name in CHECKS:
        table.add_column(name, justify="center")
    marks = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[dim]n/a[/]"}
    for v in report.variants:
        cells = [marks[v.checks[c].ok] if c in v.checks else "" for c in CHECKS]
        table.add_row(f"{v.folder} {v.name}", *cells)
    out.print(table)
    for v in report.variants:
        for name, check in v.checks.items():
            if check.ok is False:
                out.print(f"[bold red]FAIL[/] {v.folder} {v.name} {name}: "
                          f"{check.message}", highlight=False)
    if report.closest is not None:
        a, b, gap = report.closest
        verdict = "pass" if report.diversity_ok else "[bold red]FAIL[/]"
        out.print(f"diversity {verdict}: closest default trajectories {a} and "
                  f"{b}, {gap:.4f} apart (at least 0.01 needed)", highlight=False)
    passed = sum(v.ok for v in report.variants)
    out.print(f"{passed} of {len(report.variants)} variants pass every check "
              f"in {report.seconds:.1f} s")
    if json_file is not None:
        json_file.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def plot(
    synth_dir: Annotated[
        Path, typer.Argument(help="A folder of generated variants.")
    ] = DEFAULT_SYNTH,
    png: Annotated[Path, typer.Option("--out", help="The PNG to write.")] = Path(
        "schedules.png"
    ),
    variant: Annotated[
        Optional[list[str]],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="Only this variant (id, name or glob); repeatable."),
    ] = None,
    batches: Annotated[
        int, typer.Option(help="Batches an epoch for per-batch schedules.")
    ] = 100,
) -> None:
    """Draw every variant's rate against epoch, one panel per family."""
    try:
        from .plot import plot_schedules

        written = plot_schedules(synth_dir, png, only=variant, batches_per_epoch=batches)
    except ModuleNotFoundError as error:
        raise fail(f"lrgen plot needs {error.name}: pip install 'lrgen[plot]'") from None
    except (ValueError, OSError) as error:
        raise fail(str(error)) from None
    out.print(f"wrote {written}", highlight=False)


@app.command("list")
def list_variants(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the catalog as JSON.")
    ] = False,
) -> None:
    """Show the catalog: every variant, its family, stepping and keys."""
    if as_json:
        out.print_json(json.dumps([_entry(v) for v in catalog.VARIANTS]))
        return
    epochs = catalog.DEFAULT_EPOCH_MAX
    scope = {"epochs": epochs, "total_steps": epochs * CIFAR10_BATCHES}
    table = Table(
        title=f"{len(catalog.VARIANTS)} variants; a key's stored default, what "
        f"torch gets for it at epoch_max={epochs} (and {CIFAR10_BATCHES} batches "
        "an epoch), and its range"
    )
    for column in ("id", "name", "family (torch classes)", "stepping"):
        table.add_column(column, no_wrap=True)
    table.add_column("hyperparameters", min_width=44)
    for v in catalog.VARIANTS:
        keys = "\n".join(
            f"{h.key}={h.default:g} -> {h.real(h.default, scope):.4g} "
            f"({h.mapping.describe()})"
            for h in v.hparams
        )
        family = v.family
        if v.classes != (v.family,):
            family += "\n(" + ", ".join(v.classes) + ")"
        table.add_row(v.id, v.name, family, v.stepping, keys)
    out.print(table)


def _entry(v: catalog.Variant) -> dict[str, object]:
    return {
        "id": v.id,
        "name": v.name,
        "family": v.family,
        "classes": list(v.classes),
        "stepping": v.stepping,
        "summary": v.summary,
        "hyperparameters": [
            {"key": h.key, "default": h.default, "range": h.mapping.describe(),
             "meaning": h.meaning}
            for h in v.hparams
        ],
    }


def main() -> None:
    app()


if __name__ == "__main__":
    main()
