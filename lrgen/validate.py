"""`lrgen validate`: prove every generated variant before it is trained.

Each variant is checked in a worker process with a time limit, so that one
broken model cannot take the run down. The checks, in order:

- static: it compiles and passes NNEval's static checks;
- build: `Net` builds for a 2x3x32x32 input and 10 classes, the forward pass
  has the right shape, and one real training step runs;
- trajectory: the generated `train_setup` and `learn` run `epoch_max + 2`
  epochs (a cheap stand-in replaces the network's forward pass; optimizer
  and scheduler are the real ones) and the rate at every optimizer step
  matches the catalog's closed form;
- search: random draws of the hyperparameters, as LEMUR's Optuna search
  makes them, give finite, non-negative rates, also past `epoch_max`;
- budget: 5 epochs of 782 batches (CIFAR-10 at batch 64) do not overrun a
  per-batch schedule;
- resume: training stopped, saved and loaded into a fresh model continues
  with the same rates; the trained model pickles.

Across the set, the two closest default trajectories are named.
"""

from __future__ import annotations

import ast
import io
import json
import math
import multiprocessing
import pickle
import random
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Any

CHECKS = ("static", "build", "trajectory", "search", "budget", "resume")
TOLERANCE = 1e-6
CIFAR10_BATCHES = 782  # 50,000 training images at batch 64
TRAJECTORY_BATCHES = 3
DIVERSITY_BATCHES = 100
DIVERSITY_MIN = 0.01


@dataclass
class Check:
    ok: bool | None  # None: does not apply to this variant
    message: str = ""
    seconds: float = 0.0


@dataclass
class VariantReport:
    folder: str
    name: str
    checks: dict[str, Check] = field(default_factory=dict)
    trajectory: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks.values())


@dataclass
class Report:
    variants: list[VariantReport]
    closest: tuple[str, str, float] | None
    seconds: float

    @property
    def diversity_ok(self) -> bool:
        return self.closest is None or self.closest[2] >= DIVERSITY_MIN

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.variants) and self.diversity_ok

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "variants": [
                {
                    "folder": v.folder,
                    "name": v.name,
                    "ok": v.ok,
                    "checks": {
                        name: {
                            "ok": c.ok,
                            "message": c.message,
                            "seconds": round(c.seconds, 3),
                        }
                        for name, c in v.checks.items()
                    },
                }
                for v in self.variants
            ],
            "diversity": None
            if self.closest is None
            else {
                "ok": self.diversity_ok,
                "closest": list(self.closest[:2]),
                "distance": self.closest[2],
                "minimum": DIVERSITY_MIN,
            },
        }


# ----------------------------------------------------------------------------
# Static checks: NNEval's, from the text alone (no torch).
# ----------------------------------------------------------------------------


def static_problems(code: str, prm: dict[str, Any]) -> list[str]:
    """What NNEval would reject in a model's text, and keys hp.txt lacks."""
    try:
        tree = ast.parse(code)
        compile(code, "new_nn.py", "exec")
    except SyntaxError as error:
        return [f"line {error.lineno}: {error.msg}"]
    problems = [
        f"no `def {name}(` preceded by white space"
        for name in ("supported_hyperparameters", "train_setup", "learn")
        if not re.search(rf"\sdef {name}\(", code)
    ]
    function = next(
        (
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and node.name == "supported_hyperparameters"
        ),
        None,
    )
    keys: list[str] = []
    first = function.body[0] if function else None
    if (
        isinstance(first, ast.Return)
        and isinstance(first.value, (ast.Set, ast.List))
        and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str)
            for e in first.value.elts
        )
    ):
        keys = [e.value for e in first.value.elts]  # type: ignore[attr-defined]
    else:
        problems.append(
            "supported_hyperparameters() does not start with `return` of a "
            "literal set or list of strings"
        )
    for key in keys:
        quoted = len(re.findall(rf"""(['"]){re.escape(key)}\1""", code))
        if quoted < 2:
            problems.append(f"key {key!r} appears quoted only {quoted} time(s)")
        if not re.search(rf"""prm(\[|\.get\()(['"]){re.escape(key)}\2""", code):
            problems.append(f"key {key!r} is never read as prm[{key!r}]")
        if key not in prm:
            problems.append(f"hp.txt has no {key!r}")
    return problems


# ----------------------------------------------------------------------------
# The checks that run models, in a worker process.
# ----------------------------------------------------------------------------


def _timed(checks: dict[str, Check], name: str) -> Callable[[Callable[[], str | None]], None]:
    """Run one check, recording pass, failure (with its reason) and time."""

    def run(body: Callable[[], str | None]) -> None:
        start = time.perf_counter()
        try:
            message = body()
            check = Check(True, message or "")
        except _NotApplicable as reason:
            check = Check(None, str(reason))
        except Exception as error:  # noqa: BLE001 (any failure is a finding)
            check = Check(False, _describe(error))
        check.seconds = time.perf_counter() - start
        checks[name] = check

    return run


class _NotApplicable(Exception):
    pass


class _Mismatch(Exception):
    pass


def _describe(error: BaseException) -> str:
    """The error and the generated line it came from, if any."""
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.endswith("new_nn.py"):
            where = f" (new_nn.py line {frame.lineno}: {(frame.line or '').strip()})"
            break
    text = str(error) or type(error).__name__
    if not isinstance(error, (_Mismatch, AssertionError)):
        text = f"{type(error).__name__}: {text}"
    return text + where


def _batches(count: int, size: int, image: tuple[int, int]) -> list[Any]:
    import torch

    generator = torch.Generator().manual_seed(0)
    return [
        (
            torch.rand((size, 3, *image), generator=generator),
            torch.randint(0, 10, (size,), generator=generator),
        )
        for _ in range(count)
    ]


class _StepRecorder:
    """Records each group's rate right before every optimizer step."""

    def __init__(self) -> None:
        self.rates: list[list[float]] = []

    def __call__(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.rates.append([float(g["lr"]) for g in optimizer.param_groups])


def _stand_in(module: Any, prm: dict[str, Any]) -> Any:
    """The variant's `Net` with its forward pass and `parameters()` replaced
    by a tiny linear head's: `train_setup` and `learn` are the generated ones,
    so are the optimizer and scheduler they build, but a step costs little."""
    import torch

    model = module.Net((2, 3, 32, 32), (10,), prm, torch.device("cpu"))
    head = torch.nn.Linear(3, 10)
    object.__setattr__(model, "forward", lambda x: head(x.mean(dim=(2, 3))))
    object.__setattr__(model, "parameters", lambda recurse=True: head.parameters())
    return model


def _train(model: Any, prm: dict[str, Any], epochs: int, data: list[Any]) -> list[list[float]]:
    """Rates of `epochs` epochs of the LEMUR loop on a fresh train_setup."""
    model.train_setup(prm)
    recorder = _StepRecorder()
    handle = model.optimizer.register_step_pre_hook(recorder)
    try:
        for _ in range(epochs):
            model.train()
            model.learn(data)
    finally:
        handle.remove()
    return recorder.rates


def _bases(model: Any) -> list[float]:
    return [float(g.get("initial_lr", g["lr"])) for g in model.optimizer.param_groups]


def _compare(got: list[list[float]], expected: list[list[float]], batches: int) -> None:
    if len(got) != len(expected):
        raise _Mismatch(f"{len(got)} optimizer steps, expected {len(expected)}")
    for step, (rates, wanted) in enumerate(zip(got, expected)):
        for group, (rate, value) in enumerate(zip(rates, wanted)):
            if not math.isclose(rate, value, rel_tol=TOLERANCE, abs_tol=1e-12):
                raise _Mismatch(
                    f"epoch {step // batches + 1}, batch {step % batches + 1}, "
                    f"group {group}: rate {rate:.9g}, closed form {value:.9g}"
                )


def _draws(variant: Any, count: int, seed: int) -> Iterator[tuple[dict[str, Any], int]]:
    """Hyperparameters as LEMUR's Optuna search draws them, with the ends of
    [0, 1] first."""
    rng = random.Random(seed)
    for index in range(count):
        if index < 2:
            values = {key: float(index) for key in variant.keys}
        else:
            values = {
                key: rng.choice([0.0, 1.0, rng.random(), rng.random()])
                for key in variant.keys
            }
        prm = {
            **values,
            "lr": 10 ** rng.uniform(-4, 0),
            "momentum": rng.uniform(0, 0.99),
            "epoch_max": rng.randint(1, 60),
        }
        yield prm, rng.randint(1, 50)


def check_variant(folder: str, draws: int, seed: int) -> VariantReport:
    """Every check of one generated variant folder."""
    with warnings.catch_warnings():
        # Runs that stop and resume step schedulers outside an optimizer
        # step on purpose; torch's warnings about it are noise here.
        warnings.simplefilter("ignore")
        return _check_variant(folder, draws, seed)


def _check_variant(folder: str, draws: int, seed: int) -> VariantReport:
    import torch

    from . import catalog, reference
    from .models import load_module, schedule_rates, variant_of

    path = Path(folder)
    code = (path / "new_nn.py").read_text(encoding="utf-8", errors="replace")
    try:
        variant = variant_of(code)
    except SyntaxError:
        variant = None  # the static check names the line
    report = VariantReport(path.name, variant.name if variant else "?")
    checks = report.checks
    state: dict[str, Any] = {}
    prm: dict[str, Any] = {}

    @_timed(checks, "static")
    def _static() -> None:
        try:
            prm.update(json.loads((path / "hp.txt").read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise _Mismatch(f"hp.txt unreadable: {error}") from None
        problems = static_problems(code, prm)
        if problems:
            raise _Mismatch("; ".join(problems))
        if variant is None:
            raise _Mismatch("no lrgen builder docstring: not a catalog variant")

    @_timed(checks, "build")
    def _build() -> None:
        module = state["module"] = load_module(path / "new_nn.py")
        model = module.Net((2, 3, 32, 32), (10,), prm, torch.device("cpu"))
        model.eval()
        shape = tuple(model(torch.rand(2, 3, 32, 32)).shape)
        if shape != (2, 10):
            raise _Mismatch(f"forward gives shape {shape}, expected (2, 10)")
        model.train_setup(prm)
        model.train()
        model.learn(_batches(1, 2, (32, 32)))
        state["trained"] = model

    def applies() -> tuple[Any, catalog.Variant]:
        if "module" not in state or variant is None or checks["static"].ok is False:
            raise _NotApplicable("skipped: static or build failed")
        return state["module"], variant

    @_timed(checks, "trajectory")
    def _trajectory() -> str:
        module, v = applies()
        epochs = int(prm["epoch_max"]) + 2
        model = _stand_in(module, prm)
        data = _batches(TRAJECTORY_BATCHES, 1, (1, 1))
        model.train_setup(prm)
        bases = _bases(model)
        got = _train(model, prm, epochs, data)
        expected = reference.rates(v, prm, bases, epochs, TRAJECTORY_BATCHES)
        _compare(got, expected, TRAJECTORY_BATCHES)
        state["stand_in"] = model
        return f"{len(got)} steps match"

    @_timed(checks, "search")
    def _search() -> str:
        module, v = applies()
        for index, (draw, batches) in enumerate(_draws(v, draws, seed)):
            epochs = draw["epoch_max"] + 2
            try:
                rates = schedule_rates(module, v.stepping, draw, epochs, batches)
            except Exception as error:  # noqa: BLE001 (any failure is a finding)
                raise _Mismatch(
                    f"draw {index} ({_show(draw, batches)}): {_describe(error)}"
                ) from None
            for step, (rate,) in enumerate(rates):
                if not (math.isfinite(rate) and rate >= 0):
                    raise _Mismatch(
                        f"draw {index} ({_show(draw, batches)}): rate {rate} at "
                        f"step {step}"
                    )
        return f"{draws} draws"

    @_timed(checks, "budget")
    def _budget() -> str:
        module, v = applies()
        if v.stepping != "batch":
            raise _NotApplicable("per-epoch schedule")
        model = state.get("stand_in") or _stand_in(module, prm)
        model.train_setup(prm)
        bases = _bases(model)
        got = _train(model, prm, 5, _batches(CIFAR10_BATCHES, 1, (1, 1)))
        expected = reference.rates(v, prm, bases, 5, CIFAR10_BATCHES)
        _compare(got, expected, CIFAR10_BATCHES)
        return f"5 x {CIFAR10_BATCHES} batches, rates as the closed form"

    @_timed(checks, "resume")
    def _resume() -> str:
        module, _ = applies()
        pickle.dumps(state["trained"])
        short = {**prm, "epoch_max": 6}
        data = _batches(4, 1, (1, 1))
        first = state.get("stand_in") or _stand_in(module, short)
        whole = _train(first, short, 8, data)
        before = _train(first, short, 3, data)
        saved = io.BytesIO()
        torch.save(
            {
                "model": first.state_dict(),
                "optimizer": first.optimizer.state_dict(),
                "scheduler": first.scheduler.state_dict(),
            },
            saved,
        )
        saved.seek(0)
        state_dicts = torch.load(saved, weights_only=False)
        fresh = _stand_in(module, short)
        fresh.train_setup(short)
        if fresh.scheduler is None:
            fresh.scheduler = fresh.build_scheduler(len(data))
        fresh.load_state_dict(state_dicts["model"])
        fresh.optimizer.load_state_dict(state_dicts["optimizer"])
        fresh.scheduler.load_state_dict(state_dicts["scheduler"])
        recorder = _StepRecorder()
        fresh.optimizer.register_step_pre_hook(recorder)
        for _ in range(5):
            fresh.train()
            fresh.learn(data)
        _compare(before + recorder.rates, whole, len(data))
        return "3 + 5 epochs equal 8"

    if report.ok and variant is not None:
        # The default per-epoch trajectory, for the diversity of the set.
        rates = schedule_rates(
            state["module"], variant.stepping, prm, int(prm["epoch_max"]),
            DIVERSITY_BATCHES,
        )  # fmt: skip
        report.trajectory = [r[0] for r in rates[::DIVERSITY_BATCHES]]
    return report


def _show(prm: dict[str, Any], batches: int) -> str:
    shown = ", ".join(f"{k}={v:.4g}" for k, v in prm.items() if k != "epoch_max")
    return f"{shown}, epoch_max={prm['epoch_max']}, {batches} batches an epoch"


# ----------------------------------------------------------------------------
# The run over a folder.
# ----------------------------------------------------------------------------


def _start_worker() -> None:
    """One thread a worker: the workers already share the cores."""
    import torch

    torch.set_num_threads(1)


def variant_folders(synth_dir: Path) -> list[Path]:
    return sorted(
        p for p in synth_dir.iterdir() if p.is_dir() and (p / "new_nn.py").is_file()
    )


def _failed(folder: Path, message: str) -> VariantReport:
    report = VariantReport(folder.name, "?")
    report.checks = {name: Check(False, message) for name in CHECKS}
    return report


def closest_pair(reports: list[VariantReport]) -> tuple[str, str, float] | None:
    """The two variants whose default per-epoch trajectories (rate / lr) are
    closest, and their distance: the largest gap at any epoch."""
    best: tuple[str, str, float] | None = None
    usable = [r for r in reports if r.trajectory]
    for i, a in enumerate(usable):
        for b in usable[i + 1 :]:
            gap = max(
                (abs(x - y) for x, y in zip(a.trajectory, b.trajectory)), default=0.0
            )
            if len(a.trajectory) != len(b.trajectory):
                gap = max(gap, 1.0)
            if best is None or gap < best[2]:
                best = (f"{a.folder} {a.name}", f"{b.folder} {b.name}", gap)
    return best


def validate(
    synth_dir: Path,
    draws: int = 25,
    seed: int = 0,
    timeout: float = 120.0,
    workers: int = 2,
    progress: Callable[[VariantReport], None] | None = None,
) -> Report:
    """Check every variant folder of `synth_dir` in `workers` processes."""
    start = time.perf_counter()
    folders = variant_folders(synth_dir)
    results: dict[Path, VariantReport] = {}
    context = multiprocessing.get_context("spawn")
    pending = list(folders)
    while pending:
        pool: Pool = context.Pool(
            max(1, min(workers, len(pending))), initializer=_start_worker
        )
        try:
            jobs: list[tuple[Path, AsyncResult[VariantReport]]] = [
                (f, pool.apply_async(check_variant, (str(f), draws, seed)))
                for f in pending
            ]
            pending = []
            for index, (folder, job) in enumerate(jobs):
                try:
                    results[folder] = job.get(timeout)
                except multiprocessing.TimeoutError:
                    results[folder] = _failed(
                        folder, f"no answer within {timeout:g} s (hung or crashed)"
                    )
                    pending = [f for f, _ in jobs[index + 1 :]]
                except Exception as error:  # noqa: BLE001 (a worker that died)
                    results[folder] = _failed(folder, f"worker failed: {error}")
                if progress is not None:
                    progress(results[folder])
                if pending:
                    break
        finally:
            pool.terminate()
            pool.join()
    reports = [results[f] for f in folders]
    return Report(reports, closest_pair(reports), time.perf_counter() - start)
