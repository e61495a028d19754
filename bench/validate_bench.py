"""Time `lrgen validate` on a folder of generated variants.

    python bench/validate_bench.py [SYNTH_DIR] [--workers N] [--draws N]

Runs `lrgen.validate.validate` once on SYNTH_DIR (default: the committed
out/nngpt/llm/epoch/A0/synth_nn) and prints the total wall time against the
goal, the time of each check summed over the variants, the slowest variants,
and the machine's load average and CPU count (the machine may be shared, so a
slow run on a loaded machine says little). Exits 1 if a variant fails a check,
so a fast but broken run is not mistaken for a good one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lrgen.validate import CHECKS, DIVERSITY_EPOCH_MAX, validate, variant_folders

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SYNTH = PROJECT_ROOT / "out" / "nngpt" / "llm" / "epoch" / "A0" / "synth_nn"
GOAL_SECONDS = 30.0
SLOWEST = 5


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:  # not available on this platform
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "synth_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_SYNTH,
        help="folder of variant folders (A0_NNN/new_nn.py, hp.txt) "
        "[default: the committed out/ folder]",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes [default: 2]"
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=25,
        help="random search draws per variant [default: 25]",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds one variant may take [default: 120]",
    )
    args = parser.parse_args(argv)

    if not args.synth_dir.is_dir() or not variant_folders(args.synth_dir):
        print(
            f"error: {args.synth_dir}: no variant folders (A0_NNN/new_nn.py)",
            file=sys.stderr,
        )
        return 2
    if args.workers < 1 or args.draws < 1 or args.timeout <= 0:
        print(
            "error: --workers and --draws must be at least 1, --timeout above 0",
            file=sys.stderr,
        )
        return 2

    count = len(variant_folders(args.synth_dir))
    cpus = os.cpu_count()
    load_start = _load()
    print(f"folder:        {args.synth_dir}")
    print(f"variants:      {count}")
    print(
        f"settings:      workers={args.workers} draws={args.draws} "
        f"seed={args.seed} timeout={args.timeout:g} s"
    )
    print(f"cpu_count:     {cpus}")
    print(f"load at start: {load_start}")

    start = time.perf_counter()
    report = validate(
        args.synth_dir,
        draws=args.draws,
        seed=args.seed,
        timeout=args.timeout,
        workers=args.workers,
    )
    wall = time.perf_counter() - start
    load_end = _load()

    per_check = {name: 0.0 for name in CHECKS}
    for v in report.variants:
        for name, check in v.checks.items():
            per_check[name] = per_check.get(name, 0.0) + check.seconds
    in_checks = sum(per_check.values())

    print(f"load at end:   {load_end}")
    print()
    met = "met" if wall < GOAL_SECONDS else "NOT met"
    print(
        f"total wall time: {wall:.1f} s for {count} variants "
        f"(goal: under {GOAL_SECONDS:g} s: {met})"
    )
    per_worker = in_checks / max(1, min(args.workers, count))
    print(
        f"time inside the checks: {in_checks:.1f} s over all workers, "
        f"{per_worker:.1f} s per worker; the other "
        f"{max(0.0, wall - per_worker):.1f} s of wall time go to spawning "
        f"workers, importing torch and waiting"
    )
    print()
    print("time per check, summed over variants:")
    for name, seconds in sorted(per_check.items(), key=lambda kv: -kv[1]):
        share = seconds / in_checks if in_checks else 0.0
        print(f"  {name:<11} {seconds:7.2f} s  {share:6.1%}")
    print()
    print(f"the {SLOWEST} slowest variants (time inside their checks):")
    ranked = sorted(
        report.variants, key=lambda v: -sum(c.seconds for c in v.checks.values())
    )
    for v in ranked[:SLOWEST]:
        total = sum(c.seconds for c in v.checks.values())
        top = max(v.checks.items(), key=lambda kv: kv[1].seconds, default=None)
        slowest = f", most in {top[0]} ({top[1].seconds:.2f} s)" if top else ""
        print(f"  {v.folder} {v.name:<36} {total:6.2f} s{slowest}")
    print()
    failed = [
        f"  {v.folder} {v.name} {name}: {c.message}"
        for v in report.variants
        for name, c in v.checks.items()
        if c.ok is False
    ]
    passed = sum(v.ok for v in report.variants)
    print(
        f"{passed} of {count} variants pass every check; diversity "
        f"{'ok' if report.diversity_ok else 'FAILED'}"
        + (
            f" (closest {report.closest[0]} and {report.closest[1]}, "
            f"{report.closest[2]:.4f} apart at epoch_max={DIVERSITY_EPOCH_MAX})"
            if report.closest
            else ""
        )
    )
    for line in failed:
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
