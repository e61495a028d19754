"""The `lrgen` command line."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__, catalog

if TYPE_CHECKING:  # the generator is imported by the commands that run it
    from .generate import BaseOutcome, Generated
    from .report import Results
    from rich.progress import TaskID

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


EXIT_CODES = "Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 an error in lrgen."


def _version(value: bool) -> None:
    if value:
        out.print(f"lrgen {__version__}")
        raise typer.Exit()


DEBUG = {"on": False}


@app.callback(epilog=EXIT_CODES)
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python's traceback of errors.")
    ] = False,
) -> None:
    """Learning-rate-scheduler variants of a LEMUR model, generated with LibCST
    codemods and proven before training."""
    DEBUG["on"] = debug


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _base_or_project(base: Path | None) -> Path:
    if base is not None:
        return base
    return RELATIVE_BASE if RELATIVE_BASE.is_file() else PROJECT_BASE


BaseOption = Annotated[
    Optional[Path],  # noqa: UP045 (typer reads the annotation at run time)
    typer.Option(
        "--base", help="The LEMUR model to vary (default: the project's "
        "base_model/resnet18.py).", show_default=False,
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")
]


def _select(patterns: list[str] | None) -> list[catalog.Variant]:
    try:
        return catalog.select(patterns)
    except catalog.UnknownVariantError as error:
        raise fail(str(error)) from None


@app.command(epilog=EXIT_CODES)
def generate(
    bases: Annotated[
        Optional[list[Path]],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(
            "--base", help="The LEMUR model to vary (default: the project's "
            "base_model/resnet18.py); a folder means every *.py in it. Repeatable: "
            "with several models each variant folder is named <model>_A0_NNN.",
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
    only: Annotated[
        Optional[list[str]],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="Only these variants: an id, a name or a glob such as "
                     "'Cosine*'; repeatable. The output's other variants stay.",
                     show_default=False),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 and list the "
                           "files that would change.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an output folder that holds "
                           "files lrgen did not write (notes, other results) or "
                           "results of variants whose code changes.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Take out a scheduler the base "
                           "model has, and put each variant's in its place.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was written as JSON.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Write every catalog variant of the base model, ready for NNEval."""
    from .generate import (
        SYNTH_PATH,
        BadInput,
        Contents,
        base_files,
        check_not_blocked,
        folder_files,
        foreign_files,
        generate_many,
        stale_files,
        with_kept_results,
        with_kept_variants,
        write_atomically,
    )
    from .generate import generate as build

    paths = bases or [_base_or_project(None)]
    many = len(paths) > 1 or paths[0].is_dir()
    target = out_dir / SYNTH_PATH
    selected = _select(only)
    outcomes: list[BaseOutcome] = []

    def prepare(files: Contents) -> Contents:
        """The output as it will be, read in the run's turn: with --only the
        other variants' folders stay, and training results stay where they
        still describe the code; files lrgen did not write need --force."""
        if only:
            files = with_kept_variants(target, files, selected)
        files = with_kept_results(target, files)
        foreign = foreign_files(target, files)
        if foreign and not force and not check:  # --check lists them
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise BadInput(
                f"{target}: replacing it would delete {len(foreign)} file(s) "
                f"({shown}) that lrgen did not write or that hold results of "
                "code it changes: move them, or pass --force"
            )
        return files

    try:
        check_not_blocked(target)
        if many:
            outcomes = generate_many(base_files(paths), selected, epoch_max, replace)
            results = [r for o in outcomes for r in o.results]
        else:
            results = build(paths[0], selected, epoch_max, replace)
        files = folder_files(results)
        if check:
            stale = stale_files(target, prepare(files))
            if as_json:
                out.print_json(json.dumps({"out": str(target), "stale": stale}))
            for name in [] if as_json else stale:
                verb = "would write" if name in files else "would delete"
                out.print(f"{verb}: {target / name}", highlight=False, markup=False)
            if stale:
                raise typer.Exit(1)
            if not quiet and not as_json:
                out.print(f"{target} is up to date ({len(files)} files)",
                          highlight=False, markup=False)
            return
        write_atomically(target, files, prepare)
    except BadInput as error:
        raise fail(str(error)) from None
    except OSError as error:
        where = error.filename or target
        raise fail(f"{where}: {error.strerror}; check the output folder's "
                   "permissions") from None
    total = sum(r.bytes for r in results)
    average = total // max(len(results), 1)
    refused = [line for o in outcomes for line in o.refused]
    if as_json:
        out.print_json(json.dumps({
            "out": str(target),
            "bases": [str(o.path) for o in outcomes] or [str(paths[0])],
            "epoch_max": epoch_max,
            "variants": [
                {"id": r.variant.id, "name": r.variant.name, "folder": r.folder,
                 "family": r.variant.family, "stepping": r.variant.stepping,
                 "bytes": r.bytes, "path": str(target / r.folder / "new_nn.py")}
                for r in results
            ],
            "refused": refused,
            "count": len(results),
            "bytes": total,
            "average_bytes": average,
        }))
    elif many:
        _print_sweep(outcomes, target, quiet)
    elif not quiet:
        _print_variants(results, paths[0], target)
    if refused:
        raise typer.Exit(1)


def _print_sweep(outcomes: list[BaseOutcome], target: Path, quiet: bool) -> None:
    """Per base of a sweep: the variants written, or why not."""
    if not quiet:
        table = Table(title=escape(f"{len(outcomes)} base models in {target}"))
        for column in ("base", "folders", "written"):
            table.add_column(column, no_wrap=column != "base")
        table.add_column("refused", justify="right")
        for o in outcomes:
            table.add_row(escape(str(o.path)), f"{o.prefix}_A0_NNN", str(len(o.results)),
                          str(len(o.refused)))
        out.print(table)
    for o in outcomes:
        for line in o.refused:
            err.print(f"refused: {line}", highlight=False, soft_wrap=True,
                      markup=False)
    written = sum(len(o.results) for o in outcomes)
    failed = sum(1 for o in outcomes if not o.results)
    if not quiet:
        out.print(f"{written} variants of {len(outcomes) - failed} base models "
                  f"written; {failed} base models refused whole", highlight=False)


def _print_variants(results: list[Generated], base: Path, target: Path) -> None:
    total = sum(r.bytes for r in results)
    average = total // max(len(results), 1)
    table = Table(title=escape(f"{len(results)} variants of {base} in {target}"))
    for column in ("id", "name", "family", "stepping"):
        table.add_column(column, no_wrap=True)
    table.add_column("bytes", justify="right")
    for r in results:
        v = r.variant
        table.add_row(v.id, v.name, v.family, v.stepping, f"{r.bytes:,}")
    out.print(table)
    out.print(
        f"{len(results)} variants, {total:,} bytes in all, {average:,} bytes on "
        "average"
    )


DEFAULT_SYNTH = Path("out", "nngpt", "llm", "epoch", "A0", "synth_nn")
PROJECT_SYNTH = PROJECT_BASE.parents[1] / DEFAULT_SYNTH


def synth_or_project(synth_dir: Path) -> Path:
    """The folder asked for; the project's own out/ when the default is not
    found from the current folder."""
    if synth_dir == DEFAULT_SYNTH and not synth_dir.is_dir():
        return PROJECT_SYNTH
    return synth_dir


@app.command()
def validate(
    synth_dir: Annotated[
        Path,
        typer.Argument(help="A folder of generated variants (A0_NNN/new_nn.py, "
                       "hp.txt; default: out/nngpt/llm/epoch/A0/synth_nn "
                       "here, else the project's).", show_default=False),
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
        typer.Option("--json", help="Also write the results as JSON to this "
                     "file; - prints them on stdout instead of the table (which "
                     "then goes to stderr)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No table and no progress: "
                           "only the failures and the summary line.")
    ] = False,
) -> None:
    """Prove every variant: NNEval's static checks, build, the rate against the
    closed form, random search draws, the per-batch budget, resume, and the
    diversity of the set (measured at epoch_max=50).

    Exit codes: 0 every check passes, 1 a check failed, 2 bad input (nothing
    is checked)."""
    import os

    from rich.progress import Progress

    from .validate import (
        CHECKS,
        DIVERSITY_BATCHES,
        DIVERSITY_EPOCH_MAX,
        DIVERSITY_MIN,
        variant_folders,
    )
    from .validate import validate as run

    synth_dir = synth_or_project(synth_dir)
    if not synth_dir.is_dir() or not variant_folders(synth_dir):
        raise fail(f"{synth_dir}: no variant folders (A0_NNN/new_nn.py) in it; "
                   "pass the synth_nn folder lrgen generate wrote")
    if draws < 1 or workers < 1 or timeout <= 0:
        raise fail("--draws and --workers must be at least 1, --timeout above 0")
    json_stdout = json_file is not None and str(json_file) == "-"
    if json_file is not None and not json_stdout:
        folder = json_file.parent
        if json_file.is_dir():
            raise fail(f"--json {json_file}: is a folder; pass a file name in it")
        if not folder.is_dir():
            raise fail(f"--json {json_file}: folder {folder} does not exist; "
                       "create it or pass another path")
        if not os.access(folder, os.W_OK) or (
            json_file.exists() and not os.access(json_file, os.W_OK)
        ):
            raise fail(f"--json {json_file}: not writable; pass another path")
    show = err if json_stdout else out  # stdout holds only the JSON then
    total = len(variant_folders(synth_dir))
    with Progress(console=err, transient=True, disable=quiet) as progress:
        task = progress.add_task("validating", total=total)
        report = run(
            synth_dir, draws=draws, seed=seed, timeout=timeout, workers=workers,
            progress=lambda r: progress.update(
                task, advance=1, description=f"{r.folder} {r.name}"
            ),
        )
    table = Table(title=escape(f"lrgen validate {synth_dir}"))
    table.add_column("variant", no_wrap=True)
    for name in CHECKS:
        table.add_column(name, justify="center")
    marks = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[dim]n/a[/]"}
    for v in report.variants:
        cells = [marks[v.checks[c].ok] if c in v.checks else "" for c in CHECKS]
        table.add_row(escape(f"{v.folder} {v.name}"), *cells)
    if not quiet:
        show.print(table)
    for v in report.variants:
        for name, check in v.checks.items():
            if check.ok is False:
                text = escape(f"{v.folder} {v.name} {name}: {check.message}")
                show.print(f"[bold red]FAIL[/] {text}", highlight=False,
                           soft_wrap=True)
    diversity = "n/a (fewer than two variants to compare)"
    if report.closest is not None:
        a, b, gap = report.closest
        diversity = "pass" if report.diversity_ok else "[bold red]FAIL[/]"
        if not (quiet and report.diversity_ok):
            show.print(
                f"diversity {diversity}: closest default trajectories "
                f"{escape(a)} and {escape(b)}, {gap:.4f} apart (rate / lr after "
                f"each epoch, measured at epoch_max={DIVERSITY_EPOCH_MAX}, {DIVERSITY_BATCHES} batches "
                f"an epoch; at least {DIVERSITY_MIN:g} needed)",
                highlight=False, soft_wrap=True,
            )
    passed = sum(v.ok for v in report.variants)
    show.print(f"{passed} of {len(report.variants)} variants pass every check; "
               f"diversity {diversity}; {report.seconds:.1f} s", highlight=False,
               soft_wrap=True)
    data = json.dumps(report.to_json(), indent=2) + "\n"
    if json_stdout:
        sys.stdout.write(data)
    elif json_file is not None:
        try:
            json_file.write_text(data)
        except OSError as error:
            raise fail(f"--json {json_file}: {error.strerror or error}") from None
    if not report.ok:
        raise typer.Exit(1)


EVAL_EPOCHS = 6
"""lrgen.train.DEFAULT_EPOCHS, named here so that `lrgen --help` needs no torch."""
EVAL_TIMEOUT = 3600.0
"""Seconds a variant may go without finishing an epoch: ten times a ResNet18
epoch over CIFAR-10 on two CPU cores."""
SEED_LIMIT = 2**32
"""numpy takes seeds below this."""
EVAL_EXIT_CODES = (
    "Exit codes: 0 every variant trained, 1 a variant failed (the others are "
    "trained), 2 bad input: nothing trained, 3 an error in lrgen, 130 "
    "interrupted, 143 terminated (run again to resume)."
)


def _at_least_one(**options: int | None) -> None:
    for name, value in options.items():
        if value is not None and value < 1:
            raise fail(f"--{name.replace('_', '-')} {value}: must be at least 1")


@app.command("eval", epilog=EVAL_EXIT_CODES)
def evaluate(
    synth_dir: Annotated[
        Path,
        typer.Argument(help="A folder of generated variants (A0_NNN/new_nn.py, "
                       "hp.txt; default: out/nngpt/llm/epoch/A0/synth_nn here, "
                       "else the project's).", show_default=False),
    ] = DEFAULT_SYNTH,
    only: Annotated[
        Optional[list[str]],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="Only these variants: an id, a name or a glob such as "
                     "'Cosine*'; repeatable.", show_default=False),
    ] = None,
    dataset: Annotated[
        str, typer.Option(help="digits (scikit-learn's handwritten digits, no "
                          "download) or cifar10.")
    ] = "digits",
    data_dir: Annotated[
        Optional[Path],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="Where CIFAR-10 is, in torchvision's layout.",
                     show_default=False),
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Download CIFAR-10 into --data-dir "
                           "if it is not there.")
    ] = False,
    limit: Annotated[
        Optional[int],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="Train on N training images (the test set stays "
                     "whole).", show_default=False),
    ] = None,
    epochs: Annotated[
        Optional[int],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help=f"Epochs to train each variant (default: "
                     f"{EVAL_EPOCHS}).", show_default=False),
    ] = None,
    epoch_max: Annotated[
        Optional[int],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="prm['epoch_max'], the epochs every schedule spans "
                     "(default: --epochs).", show_default=False),
    ] = None,
    batch: Annotated[
        Optional[int],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="Batch size (default: each hp.txt's batch).",
                     show_default=False),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first run.")] = 0,
    repeats: Annotated[
        int, typer.Option(help="Runs per variant, seeded SEED, SEED+1, ...; the "
                          "table shows their mean and spread.")
    ] = 1,
    workers: Annotated[
        int, typer.Option(help="Variants trained at once, each in a worker "
                          "process (or Ray CPUs); 0 trains one at a time in "
                          "this process, for a debugger.")
    ] = 1,
    executor: Annotated[
        str, typer.Option(help="local, or ray: each variant a Ray task "
                          "(pip install 'lrgen\\[ray]').")
    ] = "local",
    address: Annotated[
        Optional[str],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="The Ray cluster to use, e.g. ray://head:10001 "
                     "(default: a Ray instance on this machine).",
                     show_default=False),
    ] = None,
    threads: Annotated[
        Optional[int],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="Threads each variant trains with (default: the cores "
                     "shared out among the workers; 1 a Ray task).",
                     show_default=False),
    ] = None,
    timeout: Annotated[
        Optional[float],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help=f"Seconds a variant may go without finishing an epoch "
                     f"before it is stopped as hung and failed (default: "
                     f"{EVAL_TIMEOUT:g}; 0: no limit). Worker processes only.",
                     show_default=False),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Train again variants whose results "
                           "are complete.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Train the variants as the LEMUR loop does; write NNEval's files into
    each variant folder and results.csv beside them. A variant whose results
    are complete for the same settings is skipped, so a rerun resumes."""
    import importlib.util
    import os
    import time

    _at_least_one(limit=limit, epochs=epochs, epoch_max=epoch_max, batch=batch,
                  repeats=repeats, threads=threads)
    if workers < 0:
        raise fail(f"--workers {workers}: must be 0 (this process) or more")
    if seed < 0 or seed + repeats > SEED_LIMIT:
        seeds = f"--seed {seed}" + (
            f" --repeats {repeats}: the seeds {seed} to {seed + repeats - 1}"
            if repeats > 1 else ": the seed"
        )
        raise fail(f"{seeds} must lie from 0 to {SEED_LIMIT - 1}")
    cores = os.cpu_count() or 1
    if threads is not None and executor != "ray" and threads > cores:
        raise fail(f"--threads {threads}: this machine has {cores} cores")
    if timeout is not None and not 0 <= timeout < float("inf"):
        raise fail(f"--timeout {timeout:g}: must be 0 (no limit) or more seconds")
    if timeout is not None and (workers == 0 or executor == "ray"):
        raise fail("--timeout applies to local worker processes: drop it, or "
                   "use --workers 1 or more without --executor ray")
    if workers == 0 and executor == "ray":
        raise fail("--workers 0 trains in this process: with --executor ray give "
                   "the number of tasks at once, 1 or more")
    if dataset == "digits" and (data_dir is not None or download):
        raise fail("--data-dir and --download are for --dataset cifar10; the "
                   "digits need neither")
    if executor not in ("local", "ray"):
        raise fail(f"--executor {executor}: unknown; use local or ray")
    if address is not None and executor != "ray":
        raise fail("--address names a Ray cluster: add --executor ray, or drop "
                   "--address")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise fail("--executor ray needs Ray, which is not installed: pip "
                   "install 'lrgen[ray]'")
    synth_dir = synth_or_project(synth_dir)
    if synth_dir.is_dir() and not os.access(synth_dir, os.W_OK):
        raise fail(f"{synth_dir}: not writable; the results go into its variant "
                   "folders")

    from filelock import Timeout

    from .data import load_data
    from .evaluate import plan, run, write_results_csv
    from .generate import BadInput, eval_lock
    from .train import DEFAULT_EPOCHS, EvalSettings

    lock = eval_lock(synth_dir)
    try:
        settings = EvalSettings(
            dataset=dataset, data_dir=data_dir, download=download, limit=limit,
            epochs=epochs or DEFAULT_EPOCHS, epoch_max=epoch_max, batch=batch,
            seeds=tuple(range(seed, seed + repeats)), threads=threads,
        )  # fmt: skip
        plan(synth_dir, only, settings, force)  # bad input before the data loads
        data = load_data(dataset, data_dir, download, limit)
        images = len(data.train)  # type: ignore[arg-type]
        if batch is not None and batch > images:
            raise BadInput(f"--batch {batch}: more than the {images} training "
                           "images; choose at most that")
        lock.acquire(timeout=0)
    except BadInput as error:
        raise fail(str(error)) from None
    except Timeout:
        raise fail(f"{synth_dir}: another lrgen eval is training these variants; "
                   "wait for it to finish") from None
    except OSError as error:  # the lock file beside the folder
        raise fail(f"{lock.lock_file}: cannot create the lock that keeps two evals "
                   f"apart ({error.strerror or error}); make its folder "
                   "writable") from None
    try:
        chosen = plan(synth_dir, only, settings, force)  # as it is, now it is ours
        if chosen.skipped and not quiet:
            out.print(f"{len(chosen.skipped)} of {len(chosen.selected)} variants "
                      "already trained with these settings, skipped (--force "
                      "trains them again)", highlight=False)
        start = time.perf_counter()
        bars = _EvalProgress(len(chosen.todo), settings.epochs * repeats, quiet)
        limit_s = EVAL_TIMEOUT if timeout is None else timeout
        try:
            with bars.progress, _terminate_as_interrupt():
                run(chosen.todo, settings, bars, workers=workers,
                    executor="ray" if executor == "ray" else "local",
                    address=address, data=data, timeout=limit_s or None)
        except KeyboardInterrupt as stop:
            write_results_csv(synth_dir)
            how, code = (("terminated", 143) if isinstance(stop, _Terminated)
                         else ("interrupted", 130))
            raise fail(
                f"{how}: {bars.done} of {len(chosen.todo)} variants finished, "
                "their results kept; run the same command again to train the "
                "rest", code,
            ) from None
        results = write_results_csv(synth_dir)
    except BadInput as error:
        raise fail(str(error)) from None
    finally:
        lock.release()
    if not quiet:
        _print_eval(synth_dir, chosen.selected, set(chosen.skipped))
    for folder, problem in bars.failed:
        out.print(f"[bold red]FAILED[/] {escape(f'{folder.name} {problem}')}",
                  highlight=False, soft_wrap=True)
    if not quiet:
        ran, failed = len(chosen.todo), len(bars.failed)
        out.print(
            f"{ran} variant{'' if ran == 1 else 's'} run: {ran - failed} trained, "
            f"{failed} failed; {len(chosen.skipped)} skipped; "
            f"{time.perf_counter() - start:.1f} s; every result in {results}",
            highlight=False, soft_wrap=True,
        )
    if bars.failed:
        raise typer.Exit(1)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, ending the run as Ctrl-C does."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Within: SIGTERM stops the run as Ctrl-C does (the workers stopped, the
    finished variants' results and results.csv kept)."""

    def stop(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _variant_name(folder: Path) -> str:
    try:
        return catalog.get(folder.name[-6:]).name
    except catalog.UnknownVariantError:
        return "?"


class _EvalProgress:
    """`lrgen eval`'s bars on stderr: one for the run, and one for each variant
    in flight, over its epochs (of every seed)."""

    def __init__(self, variants: int, epochs: int, quiet: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(),
            console=err, transient=True, disable=quiet or not err.is_terminal,
        )  # fmt: skip
        self.run = self.progress.add_task("variants", total=variants)
        self.epochs = epochs
        self.bars: dict[Path, TaskID] = {}
        self.done = 0
        self.failed: list[tuple[Path, str]] = []

    def started(self, folder: Path) -> None:
        self.bars[folder] = self.progress.add_task(
            escape(f"{folder.name} {_variant_name(folder)}"), total=self.epochs
        )

    def epoch(self, folder: Path, run: int, epoch: int, epochs: int) -> None:
        if folder in self.bars:
            self.progress.update(self.bars[folder], completed=run * epochs + epoch)

    def finished(self, folder: Path, record: dict[str, object]) -> None:
        if folder in self.bars:
            self.progress.remove_task(self.bars.pop(folder))
        self.progress.advance(self.run)
        self.done += 1
        if record["status"] != "ok":
            error = str(record["error"]).removeprefix(f"{folder.name}: ")
            self.failed.append((folder, f"{_variant_name(folder)}: {error}"))


def _print_eval(synth_dir: Path, folders: list[Path], skipped: set[Path]) -> None:
    from .evaluate import spread, summarize

    def shown(values: list[float]) -> str:
        found = spread(values)
        if found is None:
            return ""
        mean, deviation = found
        return f"{mean:.4f}" + (f" ± {deviation:.4f}" if len(values) > 1 else "")

    table = Table(title=escape(f"lrgen eval {synth_dir}"))
    table.add_column("variant", no_wrap=True)
    table.add_column("name")
    table.add_column("status")
    table.add_column("final test accuracy", justify="right")
    table.add_column("best", justify="right")
    table.add_column("seconds", justify="right")
    for folder in folders:
        summary = summarize(folder)
        if summary is None:
            continue
        status = {"ok": "ok", "unreadable": "[yellow]unreadable[/]"}.get(
            summary.status, "[bold red]FAILED[/]"
        )
        if folder in skipped:
            status += " [dim](kept)[/]"
        table.add_row(escape(folder.name), escape(summary.name or "?"), status,
                      shown(summary.final), shown(summary.best),
                      f"{summary.seconds:.1f}")
    out.print(table)


@app.command(
    epilog="Exit codes: 0 the picture was written (a variant that cannot be "
    "run is left out of it, with a warning), 2 bad input: nothing written, "
    "3 an error in lrgen."
)
def plot(
    synth_dir: Annotated[
        Path,
        typer.Argument(help="A folder of generated variants (default: "
                       "out/nngpt/llm/epoch/A0/synth_nn here, else the "
                       "project's).", show_default=False),
    ] = DEFAULT_SYNTH,
    png: Annotated[
        Path,
        typer.Option("--out", help="The picture to write, by its extension a "
                     ".png, .svg or .pdf, in a folder that exists."),
    ] = Path("schedules.png"),
    variant: Annotated[
        Optional[list[str]],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option(help="Only this variant (id, name or glob); repeatable."),
    ] = None,
    batches: Annotated[
        int, typer.Option(help="Batches an epoch for per-batch schedules.")
    ] = 100,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing on success "
                           "(warnings and errors still go to stderr).")
    ] = False,
) -> None:
    """Draw every variant's rate against epoch, one panel per family."""
    from .plot import NeedsMatplotlib, plot_schedules

    def warn(message: str) -> None:
        err.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False,
                  soft_wrap=True)

    try:
        written = plot_schedules(synth_or_project(synth_dir), png, only=variant,
                                 batches_per_epoch=batches, warn=warn)
    except (NeedsMatplotlib, ValueError, OSError) as error:
        raise fail(str(error)) from None
    if not quiet:
        out.print(f"wrote {written}", highlight=False, markup=False)


@app.command(
    epilog="Exit codes: 0 the report was written (failed variants are listed "
    "in it), 2 bad input or no trained variant to rank: nothing written, 3 an "
    "error in lrgen."
)
def report(
    synth_dir: Annotated[
        Path,
        typer.Argument(help="A folder of trained variants (default: "
                       "out/nngpt/llm/epoch/A0/synth_nn here, else the "
                       "project's).", show_default=False),
    ] = DEFAULT_SYNTH,
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Option("--out", help="The folder report.md and its pictures "
                     "(report_files/) go to (default: SYNTH_DIR).",
                     show_default=False),
    ] = None,
    top: Annotated[
        int, typer.Option(help="Variants in the per-class accuracy chart.")
    ] = 5,
    picture: Annotated[
        str, typer.Option("--format", help="The pictures' format: png or svg.")
    ] = "png",
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing on success.")
    ] = False,
) -> None:
    """Rank the trained variants and write report.md: the ranking, the most
    accurate, fastest and most stable, curves per family with the rate, and
    the accuracy per class of the best."""
    from .generate import BadInput
    from .plot import NeedsMatplotlib
    from .report import read_results, write_report

    synth_dir = synth_or_project(synth_dir)
    try:
        results = read_results(synth_dir)
        written, pictures = write_report(results, out_dir or synth_dir, top,
                                         picture.lower())
    except (BadInput, NeedsMatplotlib) as error:
        raise fail(str(error)) from None
    if not quiet:
        _print_report(results, synth_dir, written, len(pictures), picture.lower())


def _print_report(results: Results, synth_dir: Path, written: Path,
                  pictures: int, ext: str) -> None:
    from .report import (
        PICTURES,
        missing_line,
        mixed_line,
        resolution_line,
        stale_line,
        table_rows,
    )

    count = len(results.ranked)
    table = Table(title=escape(f"{count} trained variant{'s' * (count != 1)} in "
                               f"{synth_dir}, best first"))
    table.add_column("#", justify="right")
    table.add_column("variant", no_wrap=True)
    table.add_column("family")
    for column in ("final\nacc. %", "best acc. %\n(epoch)", "epochs to\n95% of best",
                   "loss std,\nlast third", "loss\nrises", "seconds"):
        table.add_column(column, justify="right", no_wrap=True)
    for rank, folder, name, family, *numbers in table_rows(results):
        table.add_row(rank, escape(f"{folder} {name}"), escape(family), *numbers)
    out.print(table)
    for failure in results.failed:
        out.print(f"[bold red]failed:[/] {escape(failure.label)}: "
                  f"{escape(failure.error)}", highlight=False, soft_wrap=True)
    notes = (resolution_line(results), missing_line(results), stale_line(results))
    for note in notes:
        if note:
            out.print(note, highlight=False, markup=False, soft_wrap=True)
    warning = mixed_line(results)
    if warning:
        err.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False,
                  soft_wrap=True)
    for answer in results.answers():
        who = answer.result.label if answer.result else "none"
        picture = answer.picture.format(ext=ext)
        out.print(f"[bold]{answer.question}:[/] {escape(who)}: "
                  f"{escape(answer.because)}; see {PICTURES}/{picture}",
                  highlight=False, soft_wrap=True)
    out.print(f"wrote {written} and {pictures} pictures in "
              f"{written.parent / PICTURES}", highlight=False, markup=False)


@app.command("list", epilog=EXIT_CODES)
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
    title = (
        f"{len(catalog.VARIANTS)} variants; a key's stored default, what torch "
        f"gets for it at epoch_max={epochs} (and {CIFAR10_BATCHES} batches an "
        "epoch), and its range"
    )
    rows = []
    for v in catalog.VARIANTS:
        keys = [
            f"{h.key}={h.default:g} -> {h.real(h.default, scope):.4g} "
            f"({h.mapping.describe()})"
            for h in v.hparams
        ]
        family = v.family
        if v.classes != (v.family,):
            family += " (" + ", ".join(v.classes[1:]) + ")"
        rows.append((v, family, keys))
    if out.width < 120:  # a table this wide would be cut: one block a variant
        out.print(title, highlight=False)
        for v, family, keys in rows:
            out.print(f"\n[bold]{v.id} {v.name}[/]  {family}, every {v.stepping}",
                      highlight=False)
            for key in keys:
                out.print(f"    {key}", highlight=False)
        return
    table = Table(title=title)
    for column in ("id", "name", "family (torch classes)", "stepping"):
        table.add_column(column, no_wrap=True)
    table.add_column("hyperparameters", min_width=44)
    for v, family, keys in rows:
        table.add_row(v.id, v.name, family.replace(" (", "\n("), v.stepping,
                      "\n".join(keys))
    out.print(table)


ReplaceOption = Annotated[
    bool, typer.Option("--replace", help="Take out a scheduler the base model "
                       "has, as generate --replace does.")
]


def _variant_code(
    base: Path, variants: list[catalog.Variant], replace: bool
) -> tuple[str, list[str]]:
    """The base model's text and each variant's code, made in memory."""
    from .generate import BadInput, generate

    try:
        results = generate(base, variants, catalog.DEFAULT_EPOCH_MAX, replace)
    except BadInput as error:
        raise fail(str(error)) from None
    return base.read_bytes().decode("utf-8-sig"), [r.code for r in results]


def _enclosing_function(lines: list[str], index: int) -> str:
    """The function a base line belongs to, for `show`'s headings."""
    for line in reversed(lines[:index]):
        name = re.match(r"\s*def (\w+)\(", line)
        if name:
            return f"{name.group(1)}()"
        if re.match(r"class (\w+)", line):
            break
    return "the module"


@app.command(epilog=EXIT_CODES)
def show(
    variant: Annotated[str, typer.Argument(help="An id (A0_018) or a name.")],
    base: BaseOption = None,
    replace: ReplaceOption = False,
) -> None:
    """What one variant does, its hyperparameters, and the code it adds."""
    from rich.syntax import Syntax

    from .review import changes

    try:
        v = catalog.get(variant)
    except catalog.UnknownVariantError as error:
        raise fail(str(error)) from None
    base = _base_or_project(base)
    text, (code,) = _variant_code(base, [v], replace)
    classes = ", ".join(f"lr_scheduler.{c}" for c in v.classes)
    if v.stepping == "batch":
        when = (
            "It is built on the first learn() call, for epoch_max x len(train_data) "
            "steps, and stepped after every optimizer step; once that budget is "
            "spent the rate holds at its last value."
        )
    else:
        when = "It is built in train_setup() and stepped once after each epoch."
    out.print(f"[bold]{v.id} {v.name}[/] ({v.family}, stepped every {v.stepping})")
    out.print(
        f"{v.summary} The model builds torch's {classes} from prm. {when} Every "
        "scheduler key is stored in [0, 1] and mapped to its range in code; the "
        f"figures below are for epoch_max={catalog.DEFAULT_EPOCH_MAX}.",
        highlight=False,
    )
    table = Table(title="hyperparameters")
    for column in ("key", "default", "torch gets", "range", "meaning"):
        table.add_column(column)
    epochs = catalog.DEFAULT_EPOCH_MAX
    scope = {"epochs": epochs, "total_steps": epochs * CIFAR10_BATCHES}
    for h in v.hparams:
        table.add_row(h.key, f"{h.default:g}", f"{h.real(h.default, scope):.4g}",
                      h.mapping.describe(), h.meaning)
    out.print(table)
    lines = text.splitlines()
    for change in changes(text, code):
        where = _enclosing_function(lines, change.after)
        if change.after == len(lines) and where != "the module":
            where = f"{where} and the end of the module"
        verb = f"replaces line {change.after + 1}" if change.removed else (
            f"after line {change.after}"
        )
        out.print(f"\n[bold]in {where}, {verb} of {base}:[/]", highlight=False)
        out.print(Syntax("\n".join(change.added), "python", theme="ansi_dark"),
                  soft_wrap=True)


@app.command(epilog=EXIT_CODES)
def diff(
    variants: Annotated[
        Optional[list[str]],  # noqa: UP045 (typer reads the annotation at run time)
        typer.Argument(help="Ids, names or globs [default: every variant].",
                       show_default=False),
    ] = None,
    base: BaseOption = None,
    stat: Annotated[
        bool, typer.Option("--stat", help="Lines added and removed per variant.")
    ] = False,
    replace: ReplaceOption = False,
) -> None:
    """The unified diff from the base model to each variant: coloured on a
    terminal, plain when piped."""
    from rich.syntax import Syntax

    from . import review

    chosen = _select(variants)
    base = _base_or_project(base)
    text, codes = _variant_code(base, chosen, replace)
    if stat:
        width = max(len(f"{v.id} {v.name}") for v in chosen)
        added_in_all = removed_in_all = 0
        for v, code in zip(chosen, codes):
            added, removed = review.stat(text, code)
            added_in_all, removed_in_all = added_in_all + added, removed_in_all + removed
            bar = review.stat_bar(added, removed, 40)
            out.print(f"{v.id} {v.name:<{width - 7}} | {added + removed:3d} "
                      f"[green]{bar.rstrip('-')}[/][red]{bar[len(bar.rstrip('-')):]}[/]",
                      highlight=False)
        out.print(f"{len(chosen)} variants, {added_in_all} insertions(+), "
                  f"{removed_in_all} deletions(-)", highlight=False)
        return
    patch = "".join(
        review.unified_diff(text, code, str(base), f"{v.id}/new_nn.py")
        for v, code in zip(chosen, codes)
    )
    if out.is_terminal:
        out.print(Syntax(patch, "diff", theme="ansi_dark"), soft_wrap=True)
    else:
        sys.stdout.write(patch)


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
    """The console entry point: an unexpected error is one line, not a
    traceback, unless --debug asks for it."""
    try:
        app(prog_name="lrgen")
    except Exception as error:  # noqa: BLE001 (the last line of defence)
        if DEBUG["on"] or "--debug" in sys.argv[1:]:
            raise
        err.print(
            f"[bold red]error:[/] {escape(f'{type(error).__name__}: {error}')} (an "
            "error in lrgen itself; run again as `lrgen --debug ...` for the "
            "traceback)",
            highlight=False, soft_wrap=True, markup=True,
        )
        sys.exit(3)


if __name__ == "__main__":
    main()
