"""Time generating variants: one base parsed once, then one small edit a variant.

    python bench/generate_bench.py [--rounds N] [--workers N]

Prints, for the ResNet18 base once it is parsed:

- the time to prepare it (the checks on the whole module, its text split);
- the median (wall clock, and the process's CPU time, which other work on
  the machine changes less), mean and p90 milliseconds per variant of the
  catalog's 30, against the 3 ms goal (on the wall-clock median): in a fresh
  process, every variant's code parsed on its first use as `lrgen generate`
  does (the figure that counts), and once that code is parsed, as every base
  but the first of a sweep sees it; each the median of --rounds processes or
  rounds;
- the whole-module round trip it replaces, and what `compile()` (the guard
  `apply_variant` runs on each variant) adds.

Then a sweep: 30 bases (the 8 shared model shapes and ResNet18, varied by
renaming the classes other than Net and adding comments, written to a temp
folder) x 30 variants, over --workers processes, in variants per second,
parsing included. Every variant of the ResNet18 base, and one of each swept
base, is checked against the whole-module round trip: the bench exits 1 on a
difference, so a fast but wrong run is not mistaken for a good one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import libcst as cst

from lrgen import catalog
from lrgen.fast_generate import PreparedBase, full_round_trip
from lrgen.generate import read_base

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESNET18 = PROJECT_ROOT / "base_model" / "resnet18.py"
SHAPES_DIR = PROJECT_ROOT.parent / "shared" / "cases" / "lemur_shapes"
REPLACE = "scheduler_already_present"
GOAL_MS = 3.0
SWEEP_BASES = 30


def _ms(seconds: float) -> float:
    return seconds * 1000


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:  # not available on this platform
        return "unknown"


# A timed round: the base's preparation (s), then each variant's wall-clock
# and CPU seconds (the CPU time is the process's own, which a machine busy
# with other work changes less).
Round = tuple[float, list[float], list[float]]


def _time_variants(base: cst.Module) -> tuple[Round, list[str]]:
    """Prepare the base, then time each variant; and the variants' codes."""
    start = time.perf_counter()
    prepared = PreparedBase(base, RESNET18)
    prepare = time.perf_counter() - start
    walls, cpus, codes = [], [], []
    for variant in catalog.VARIANTS:
        start, cpu = time.perf_counter(), time.process_time()
        codes.append(prepared.code(variant))
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return (prepare, walls, cpus), codes


def _cold_round(_: int) -> Round:
    """One fresh process: nothing parsed yet but the base."""
    return _time_variants(read_base(RESNET18))[0]


def _resnet18(rounds: int) -> tuple[dict[str, list[float]], list[str]]:
    """Per-variant times of the ResNet18 base, cold and warm, `rounds` each,
    as each round's figures (ms); and the codes of a warm round."""
    found: dict[str, list[float]] = {}
    spawn = multiprocessing.get_context("spawn")
    cold = []
    for number in range(rounds):  # a new process each
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            cold.append(pool.submit(_cold_round, number).result())
    base = read_base(RESNET18)
    _time_variants(base)  # parses every variant's code in this process
    warm = []
    for _ in range(rounds):
        timed, codes = _time_variants(base)
        warm.append(timed)
    for name, runs in (("cold", cold), ("warm", warm)):
        found[f"{name} prepare"] = [_ms(p) for p, _, _ in runs]
        found[f"{name} median"] = [_ms(statistics.median(t)) for _, t, _ in runs]
        found[f"{name} cpu"] = [_ms(statistics.median(c)) for _, _, c in runs]
        found[f"{name} mean"] = [_ms(statistics.mean(t)) for _, t, _ in runs]
        found[f"{name} p90"] = [_ms(_p90(t)) for _, t, _ in runs]
        found[f"{name} amortised"] = [
            _ms((p + sum(t)) / len(t)) for p, t, _ in runs
        ]
    return found, codes


def _round_trip_ms(base: cst.Module) -> tuple[float, float]:
    """Median ms per variant of the whole-module round trip, and of compile()."""
    whole, compiled = [], []
    for variant in catalog.VARIANTS:
        start = time.perf_counter()
        code = full_round_trip(base, variant, RESNET18)
        whole.append(time.perf_counter() - start)
        start = time.perf_counter()
        compile(code, f"{variant.id}/new_nn.py", "exec")
        compiled.append(time.perf_counter() - start)
    return _ms(statistics.median(whole)), _ms(statistics.median(compiled))


class _Rename(cst.CSTTransformer):
    """Renames names (classes other than Net) everywhere they occur."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        new = self.names.get(updated_node.value)
        return updated_node.with_changes(value=new) if new else updated_node


def _varied(text: str, number: int) -> str:
    """The model with its classes other than Net renamed (odd numbers) and a
    comment before each top-level statement (every third), headed by a
    comment that makes each base unique."""
    module = cst.parse_module(text)
    if number % 2:
        classes = {
            s.name.value: f"{s.name.value}V{number}"
            for s in module.body
            if isinstance(s, cst.ClassDef) and s.name.value != "Net"
        }
        module = cst.ensure_type(module.visit(_Rename(classes)), cst.Module)
    if number % 3 == 0:
        module = module.with_changes(
            body=[
                s.with_changes(
                    leading_lines=[
                        *getattr(s, "leading_lines", ()),
                        cst.EmptyLine(comment=cst.Comment(f"# part {i}")),
                    ]
                )
                if hasattr(s, "leading_lines")
                else s
                for i, s in enumerate(module.body)
            ]
        )
    return f"# sweep base {number}\n" + module.code


def _write_bases(folder: Path) -> list[Path]:
    originals = [RESNET18, *sorted(SHAPES_DIR.glob("*.py"))]
    paths = []
    for number in range(SWEEP_BASES):
        original = originals[number % len(originals)]
        path = folder / f"{original.stem}_{number:02d}.py"
        path.write_text(_varied(original.read_text(encoding="utf-8"), number))
        paths.append(path)
    return paths


def _generate_base(path: Path) -> tuple[int, float, str | None]:
    """Every variant of one base file, parsing included: (variants, seconds,
    the first variant's code, for checking)."""
    start = time.perf_counter()
    prepared = PreparedBase(read_base(path), path, replace=REPLACE in path.stem)
    codes = [prepared.code(v) for v in catalog.VARIANTS]
    return len(codes), time.perf_counter() - start, codes[0]


def _warm_up(_: int) -> int:
    return len(catalog.VARIANTS)


def _sweep(paths: list[Path], workers: int) -> tuple[int, float, list[str | None]]:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        list(pool.map(_warm_up, range(workers)))  # workers started and imported
        start = time.perf_counter()
        results = list(pool.map(_generate_base, paths))
        wall = time.perf_counter() - start
    return sum(n for n, _, _ in results), wall, [code for _, _, code in results]


def _check(label: str, got: list[str | None], want: Callable[[int], str]) -> int:
    wrong = [i for i, code in enumerate(got) if code != want(i)]
    if wrong:
        print(f"FAIL {label}: {len(wrong)} differ from the round trip, "
              f"first {wrong[0]}")
    return len(wrong)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, load {_load()}")

    found, codes = _resnet18(args.rounds)
    base = read_base(RESNET18)
    whole_ms, compile_ms = _round_trip_ms(base)
    wrong = _check(
        "ResNet18",
        list(codes),
        lambda i: full_round_trip(base, catalog.VARIANTS[i], RESNET18),
    )
    print(
        f"\nResNet18 base, ms per variant once parsed "
        f"(median of {args.rounds} rounds)"
    )
    for name in ("cold", "warm"):
        median, cpu, mean, p90 = (
            statistics.median(found[f"{name} {figure}"])
            for figure in ("median", "cpu", "mean", "p90")
        )
        verdict = "meets" if median <= GOAL_MS else "MISSES"
        print(
            f"  {name}: median {median:.2f} (CPU time {cpu:.2f}), "
            f"mean {mean:.2f}, p90 {p90:.2f}, "
            f"with the base's preparation spread over its 30 variants "
            f"{statistics.median(found[f'{name} amortised']):.2f}; "
            f"prepare {statistics.median(found[f'{name} prepare']):.1f} once; "
            f"{verdict} the {GOAL_MS:g} ms goal"
        )
    print("  (cold: a fresh process, each variant's code parsed on first use;")
    print("   warm: that code already parsed, as for every base after a sweep's first)")
    print(
        f"  whole-module round trip: {whole_ms:.1f} median; "
        f"compile() of a variant (apply_variant's guard): {compile_ms:.2f} median"
    )

    with tempfile.TemporaryDirectory(prefix="lrgen-sweep-") as folder:
        paths = _write_bases(Path(folder))
        count, wall, firsts = _sweep(paths, args.workers)
        wrong += _check(
            "sweep",
            firsts,
            lambda i: full_round_trip(
                read_base(paths[i]),
                catalog.VARIANTS[0],
                paths[i],
                REPLACE in paths[i].stem,
            ),
        )
    print(
        f"\nsweep: {len(paths)} bases x {len(catalog.VARIANTS)} variants = {count} "
        f"in {wall:.2f} s on {args.workers} workers, parsing included: "
        f"{count / wall:.0f} variants/s, {_ms(wall * args.workers / count):.2f} "
        f"ms per variant per worker"
    )
    print(f"machine load after: {_load()}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
