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

Across the set, the two closest default trajectories of one model are named
(variants of different models are not compared): for each
variant, the rate / `lr` after each of 50 epochs of 100 batches (epoch_max=50,
the other values from its hp.txt), as LEMUR logs it.
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
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import catalog, reference

if TYPE_CHECKING:
    from types import ModuleType

CHECKS = ("static", "build", "trajectory", "search", "budget", "resume")
TOLERANCE = 1e-6
CIFAR10_BATCHES = 782  # 50,000 training images at batch 64
TRAJECTORY_BATCHES = 3
DIVERSITY_EPOCH_MAX = 50
DIVERSITY_BATCHES = 100
DIVERSITY_MIN = 0.01
HINT_STEPS = 400  # optimizer steps a per-batch budget probe compares
BUDGET_RULE = "the per-batch budget must be epoch_max x len(train_data)"
_DOC = re.compile(r"The (\w+) schedule, stepped")


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
                "epoch_max": DIVERSITY_EPOCH_MAX,
                "batches_per_epoch": DIVERSITY_BATCHES,
            },
        }


# ----------------------------------------------------------------------------
# Static checks: NNEval's, from the text alone (no torch).
# ----------------------------------------------------------------------------


def catalog_variant(code: str) -> catalog.Variant | None:
    """The catalog variant a generated file holds, from its builder's
    docstring ("The <Name> schedule, stepped ..."), read from the text alone:
    no torch. A file that does not parse is searched as plain text."""
    found = None
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        found = _DOC.search(code)
    else:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "build_lr_scheduler":
                found = _DOC.search(ast.get_docstring(node) or "")
                break
    return catalog.BY_NAME.get(found.group(1)) if found else None


def static_problems(code: str, prm: dict[str, Any]) -> list[str]:
    """What NNEval would reject in a model's text, keys hp.txt lacks, and
    scheduler keys hp.txt holds outside [0, 1]."""
    try:
        tree = ast.parse(code)
        compile(code, "new_nn.py", "exec")
    except SyntaxError as error:
        return [f"line {error.lineno}: {error.msg}"]
    except ValueError as error:  # e.g. a null byte
        return [str(error)]
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
    variant = catalog_variant(code)
    scheduler_keys = set(variant.keys) if variant else set()
    for key in keys:
        quoted = len(re.findall(rf"""(['"]){re.escape(key)}\1""", code))
        if quoted < 2:
            problems.append(f"key {key!r} appears quoted only {quoted} time(s)")
        if not re.search(rf"""prm(\[|\.get\()(['"]){re.escape(key)}\2""", code):
            problems.append(f"key {key!r} is never read as prm[{key!r}]")
        if key not in prm:
            problems.append(f"hp.txt has no {key!r}")
        elif key in scheduler_keys:
            value = prm[key]
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and 0 <= value <= 1):
                problems.append(
                    f"hp.txt {key!r} is {value!r}, outside [0, 1]: scheduler keys "
                    "are stored in [0, 1] (as LEMUR's search samples them) and "
                    "mapped to their range in code"
                )
    return problems


def read_variant(
    path: Path,
) -> tuple[str, dict[str, Any], list[str], catalog.Variant | None]:
    """A variant folder's code, hp.txt values, static problems and catalog
    entry, from the text alone (no torch): the parent process reads it too,
    for a variant whose worker never answered."""
    code = (path / "new_nn.py").read_text(encoding="utf-8", errors="replace")
    variant = catalog_variant(code)
    try:
        loaded = json.loads((path / "hp.txt").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return code, {}, [f"hp.txt unreadable: {error}"], variant
    if not isinstance(loaded, dict):
        return code, {}, ["hp.txt does not hold a JSON object"], variant
    problems = static_problems(code, loaded)
    if not problems and variant is None:
        problems = ["no lrgen builder docstring: not a catalog variant"]
    return code, loaded, problems, variant


def static_check(path: Path) -> Check:
    """The static check alone, in the calling process."""
    start = time.perf_counter()
    problems = read_variant(path)[2]
    seconds = time.perf_counter() - start
    return Check(not problems, "; ".join(problems), seconds)


# ----------------------------------------------------------------------------
# The checks that run models, in a worker process.
# ----------------------------------------------------------------------------


Status = MutableMapping[str, Any]
"""Where a worker tells the parent how far it got: for a variant folder, the
check it is running and the results of those it finished (a Manager dict)."""


def _timed(
    checks: dict[str, Check], name: str, tell: Callable[[str | None], None]
) -> Callable[[Callable[[], str | None]], None]:
    """Run one check, recording pass, failure (with its reason) and time."""

    def run(body: Callable[[], str | None]) -> None:
        tell(name)
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
        tell(None)

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


def _same(a: list[list[float]], b: list[list[float]]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=TOLERANCE, abs_tol=1e-12)
        for xs, ys in zip(a, b)
        for x, y in zip(xs, ys)
    )


def _budget_hint(
    module: ModuleType,
    variant: catalog.Variant,
    prm: dict[str, Any],
    bases: list[float],
    got: list[list[float]],
    batches: int,
) -> str:
    """For a per-batch schedule whose rates differ from the closed form: a
    hint when they ignore the size of the run. The generated code runs again
    with twice the epoch_max, and with other batches an epoch; if its rates
    stay the same over the first steps while the closed form's change, the
    budget does not come from epoch_max x len(train_data) (one fixed in code).
    Otherwise, or when the rate never moves at all, no hint."""
    count = min(len(got), HINT_STEPS)
    seen = got[:count]
    if count < 2 or all(rates == seen[0] for rates in seen):
        return ""
    own = reference.rates(variant, prm, bases, math.ceil(count / batches), batches)
    epochs = max(1, int(prm["epoch_max"]))
    probes = (
        ("len(train_data)", prm, batches * 2 if batches < 100 else batches // 2),
        ("epoch_max", {**prm, "epoch_max": epochs * 2}, batches),
    )
    ignored = []
    for what, probe_prm, probe_batches in probes:
        runs = math.ceil(count / probe_batches)
        model = _stand_in(module, probe_prm)
        try:
            rates = _train(model, probe_prm, runs, _batches(probe_batches, 1, (1, 1)))
        except Exception:  # noqa: BLE001 (no hint, the mismatch stands)
            continue
        expected = reference.rates(variant, probe_prm, bases, runs, probe_batches)
        if _same(rates[:count], seen) and not _same(expected[:count], own[:count]):
            ignored.append(what)
    if not ignored:
        return ""
    return (
        f"; the rates stay the same when {' or '.join(ignored)} changes, the "
        f"closed form's do not: {BUDGET_RULE}"
    )


def _diversity_trajectory(
    module: ModuleType, variant: catalog.Variant, prm: dict[str, Any]
) -> list[float]:
    """The rate / lr as LEMUR logs it, after each of epochs 1..50, for the
    hp.txt values with epoch_max=50 and 100 batches an epoch."""
    from .models import schedule_rates

    wide = {**prm, "epoch_max": DIVERSITY_EPOCH_MAX}
    lr = float(prm["lr"]) if float(prm["lr"]) > 0 else 1.0
    rates = schedule_rates(
        module, variant.stepping, wide, DIVERSITY_EPOCH_MAX + 1, DIVERSITY_BATCHES,
        bases=(lr,),
    )  # fmt: skip
    # rates[n] is the rate after n steps: after epoch k, n = k * batches.
    return [
        rates[k * DIVERSITY_BATCHES][0] / lr
        for k in range(1, DIVERSITY_EPOCH_MAX + 1)
    ]


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


def check_variant(
    folder: str, draws: int, seed: int, status: Status | None = None
) -> VariantReport:
    """Every check of one generated variant folder. With `status`, the check
    running and those finished are posted there as the run goes, so that the
    parent can tell where a worker that never answers got stuck."""
    with warnings.catch_warnings():
        # Runs that stop and resume step schedulers outside an optimizer
        # step on purpose; torch's warnings about it are noise here.
        warnings.simplefilter("ignore")
        return _check_variant(folder, draws, seed, status)


def _check_variant(
    folder: str, draws: int, seed: int, status: Status | None
) -> VariantReport:
    import torch

    from .models import _STEP_ORDER, load_module, schedule_rates

    path = Path(folder)
    code, hp, problems, variant = read_variant(path)
    report = VariantReport(path.name, variant.name if variant else "?")
    checks = report.checks
    state: dict[str, Any] = {}
    prm: dict[str, Any] = dict(hp)

    def tell(running: str | None) -> None:
        if status is not None:
            done = {n: (c.ok, c.message, c.seconds) for n, c in checks.items()}
            status[folder] = (running, done)

    def timed(name: str) -> Callable[[Callable[[], str | None]], None]:
        return _timed(checks, name, tell)

    @timed("static")
    def _static() -> None:
        if problems:
            raise _Mismatch("; ".join(problems))

    @timed("build")
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

    @timed("trajectory")
    def _trajectory() -> str:
        module, v = applies()
        epochs = int(prm["epoch_max"]) + 2
        model = _stand_in(module, prm)
        data = _batches(TRAJECTORY_BATCHES, 1, (1, 1))
        model.train_setup(prm)
        bases = _bases(model)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = _train(model, prm, epochs, data)
        expected = reference.rates(v, prm, bases, epochs, TRAJECTORY_BATCHES)
        early = any(re.search(_STEP_ORDER, str(w.message)) for w in caught)
        try:
            _compare(got, expected, TRAJECTORY_BATCHES)
        except _Mismatch as mismatch:
            if early:
                raise _Mismatch(f"{_EARLY}; {mismatch}") from None
            hint = ""
            if v.stepping == "batch":
                hint = _budget_hint(module, v, prm, bases, got, TRAJECTORY_BATCHES)
            raise _Mismatch(f"{mismatch}{hint}") from None
        if early:
            raise _Mismatch(_EARLY)
        state["stand_in"] = model
        # The default per-epoch trajectory, for the diversity of the set.
        try:
            report.trajectory = _diversity_trajectory(module, v, prm)
        except Exception as error:  # noqa: BLE001 (any failure is a finding)
            raise _Mismatch(
                f"the diversity run (epoch_max={DIVERSITY_EPOCH_MAX}, "
                f"{DIVERSITY_BATCHES} batches an epoch): {_describe(error)}"
            ) from None
        return f"{len(got)} steps match"

    @timed("search")
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

    @timed("budget")
    def _budget() -> str:
        module, v = applies()
        if v.stepping != "batch":
            raise _NotApplicable("per-epoch schedule")
        model = state.get("stand_in") or _stand_in(module, prm)
        model.train_setup(prm)
        bases = _bases(model)
        got = _train(model, prm, 5, _batches(CIFAR10_BATCHES, 1, (1, 1)))
        expected = reference.rates(v, prm, bases, 5, CIFAR10_BATCHES)
        try:
            _compare(got, expected, CIFAR10_BATCHES)
        except _Mismatch as mismatch:
            hint = _budget_hint(module, v, prm, bases, got, CIFAR10_BATCHES)
            raise _Mismatch(f"{mismatch}{hint}") from None
        return f"5 x {CIFAR10_BATCHES} batches, rates as the closed form"

    @timed("resume")
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

    return report


_EARLY = (
    "the scheduler steps before the optimizer (torch warns: Detected call of "
    "`lr_scheduler.step()` before `optimizer.step()`): call "
    "self.scheduler.step() after self.optimizer.step()"
)


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


def _unanswered(
    folder: Path, problem: str, status: Mapping[str, Any] | None
) -> VariantReport:
    """The report of a variant whose worker never answered: its name and the
    static check from the text, the checks the worker finished as it posted
    them, the failure on the check it was running, the rest not reached."""
    _, _, problems, variant = read_variant(folder)
    report = VariantReport(folder.name, variant.name if variant else "?")
    running, done = (status or {}).get(str(folder), (None, {}))
    rest = [n for n in CHECKS if n not in done]
    if running:
        stuck, where = running, f"while running the {running} check"
    elif not done:
        stuck, where = "build", "before its checks began"
    elif rest:
        stuck, where = rest[0], f"before the {rest[0]} check began"
    else:
        stuck, where = CHECKS[-1], "after its checks ended"
    for name in CHECKS:
        if name == stuck:
            report.checks[name] = Check(False, f"{problem} {where}")
        elif name == "static":
            report.checks[name] = Check(not problems, "; ".join(problems))
        elif name in done:
            report.checks[name] = Check(*done[name])
        elif name == "budget" and variant is not None and variant.stepping == "epoch":
            report.checks[name] = Check(None, "per-epoch schedule")
        else:
            report.checks[name] = Check(None, f"not reached ({stuck} never ended)")
    return report


def closest_pair(reports: list[VariantReport]) -> tuple[str, str, float] | None:
    """The two variants of one model whose default per-epoch trajectories
    (rate / lr) are closest, and their distance: the largest gap at any
    epoch. Variants of different models (`<model>_A0_NNN` folders) are not
    compared: the same variant of two models has the same schedule."""
    best: tuple[str, str, float] | None = None
    usable = [r for r in reports if r.trajectory]
    for i, a in enumerate(usable):
        for b in usable[i + 1 :]:
            if a.folder[: -len("A0_NNN")] != b.folder[: -len("A0_NNN")]:
                continue
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
    with context.Manager() as manager:
        status: Status = manager.dict()
        pending = list(folders)
        while pending:
            pending = _run_pool(
                context, pending, results, status, draws, seed, timeout, workers,
                progress,
            )  # fmt: skip
    reports = [results[f] for f in folders]
    return Report(reports, closest_pair(reports), time.perf_counter() - start)


def _run_pool(
    context: Any,
    folders: list[Path],
    results: dict[Path, VariantReport],
    status: Status,
    draws: int,
    seed: int,
    timeout: float,
    workers: int,
    progress: Callable[[VariantReport], None] | None,
) -> list[Path]:
    """Check `folders` in a fresh pool, in order; after a timeout the pool is
    ended (the hung worker with it) and the folders it had not finished are
    returned, to be checked in the next one."""
    pool: Pool = context.Pool(
        max(1, min(workers, len(folders))), initializer=_start_worker
    )
    left: list[Path] = []
    timed_out = False
    try:
        jobs: list[tuple[Path, AsyncResult[VariantReport]]] = [
            (f, pool.apply_async(check_variant, (str(f), draws, seed, status)))
            for f in folders
        ]
        for folder, job in jobs:
            if timed_out:  # keep what has finished, redo the rest
                if not (job.ready() and job.successful()):
                    left.append(folder)
                    continue
                results[folder] = job.get()
            else:
                try:
                    results[folder] = job.get(timeout)
                except multiprocessing.TimeoutError:
                    timed_out = True
                    results[folder] = _unanswered(
                        folder,
                        f"no answer within the {timeout:g} s time limit "
                        "(hung, or its worker died)",
                        status,
                    )
                except Exception as error:  # noqa: BLE001 (a worker that died)
                    results[folder] = _unanswered(
                        folder, f"worker failed ({error})", status
                    )
            if progress is not None:
                progress(results[folder])
    finally:
        pool.terminate()
        pool.join()
    return left
