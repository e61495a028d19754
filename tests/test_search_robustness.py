"""Every generated schedule survives any draw LEMUR's Optuna search can make.

The search gives each declared scheduler key a float in [0, 1] (0.0 and 1.0
included), `lr` a log-uniform value in [1e-4, 1], `momentum` one in [0, 0.99],
and sets `prm['epoch_max']` to the epochs it trains. Batches per epoch are
whatever the data gives. For every such draw each variant's schedule must
build, step (once per epoch, or once per batch), and keep every group's rate
finite and non-negative after every step, also for two epochs past
`epoch_max`. OneCycleLR is stepped the way the generated model steps it: only
while `last_epoch + 1 < total_steps`, so it holds its final rate.

The variants are generated fresh from the current sources (in memory, then
written to a temporary folder and imported by path), so the tests see what
`lrgen generate` would write now.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import os
import pickle
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lrgen import catalog
from lrgen.catalog import Variant
from lrgen.generate import DEFAULT_BASE, generate

VARIANTS = list(catalog.VARIANTS)
IDS = [v.name for v in VARIANTS]
MAX_KEYS = max(len(v.keys) for v in VARIANTS)
EXTRA_EPOCHS = 2  # epochs run past epoch_max
MAX_EPOCHS = 60
MAX_BATCHES = 50
CPU = torch.device("cpu")

# A scheduler key as the search draws it: uniform in [0, 1], ends included.
KEY = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
# One value per key position; a variant takes the first len(keys) of them, so
# the same explicit examples apply to every variant.
KEY_VALUES = st.lists(KEY, min_size=MAX_KEYS, max_size=MAX_KEYS)
LR = st.one_of(
    st.sampled_from([1e-4, 1.0]), st.floats(-4.0, 0.0).map(lambda e: 10.0**e)
)
MOMENTUM = st.one_of(st.sampled_from([0.0, 0.99]), st.floats(0.0, 0.99))
EPOCH_MAX = st.integers(1, MAX_EPOCHS)
BATCHES = st.integers(1, MAX_BATCHES)

# LRGEN_SEARCH_EXAMPLES=2000 hunts harder; the default keeps the file fast.
SEARCH = settings(
    max_examples=int(os.environ.get("LRGEN_SEARCH_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
)


# ----------------------------------------------------------------------------
# Loading the generated variants
# ----------------------------------------------------------------------------

_MODULES: dict[Path, ModuleType] = {}


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All 30 variants, generated from the current sources into a folder."""
    folder = tmp_path_factory.mktemp("search_robustness")
    for result in generate(DEFAULT_BASE, VARIANTS, catalog.DEFAULT_EPOCH_MAX):
        target = folder / result.variant.id / "new_nn.py"
        target.parent.mkdir(parents=True)
        target.write_text(result.code, encoding="utf-8")
    return folder


def load(folder: Path, variant: Variant) -> ModuleType:
    """The generated `new_nn.py` of a variant, imported by path once, under a
    unique name registered in sys.modules (so it pickles)."""
    path = folder / variant.id / "new_nn.py"
    if path not in _MODULES:
        name = f"_lrgen_search_robustness_{len(_MODULES)}_{variant.id}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _MODULES[path] = module
    return _MODULES[path]


# ----------------------------------------------------------------------------
# Running a schedule the way the generated model does
# ----------------------------------------------------------------------------


def make_prm(
    variant: Variant, values: list[float], lr: float, momentum: float, epoch_max: int
) -> dict[str, object]:
    prm: dict[str, object] = {
        "lr": lr,
        "momentum": momentum,
        "dropout": 0.2,
        "batch": 64,
        "transform": "norm_256_flip",
        "epoch_max": epoch_max,
    }
    prm.update(zip(variant.keys, values))
    return prm


def make_optimizer(
    lr: float, momentum: float, second_lr: float | None
) -> torch.optim.SGD:
    """SGD on one scalar parameter, or two groups with different rates."""
    first = torch.nn.Parameter(torch.zeros(()))
    if second_lr is None:
        return torch.optim.SGD([first], lr=lr, momentum=momentum)
    second = torch.nn.Parameter(torch.zeros(()))
    return torch.optim.SGD(
        [{"params": [first]}, {"params": [second], "lr": second_lr}],
        lr=lr,
        momentum=momentum,
    )


def rates(optimizer: torch.optim.Optimizer) -> list[float]:
    return [float(group["lr"]) for group in optimizer.param_groups]


def check_rates(optimizer: torch.optim.Optimizer, where: str) -> None:
    for index, rate in enumerate(rates(optimizer)):
        assert math.isfinite(rate) and rate >= 0, (
            f"group {index}: rate {rate!r} {where}"
        )


def holds_at_budget(module: ModuleType) -> bool:
    """Whether the generated learn() stops stepping at the end of the budget
    (`if self.scheduler.last_epoch + 1 < self.scheduler.total_steps:`), as
    the OneCycleLR variants do; the harness then does the same."""
    return "total_steps" in inspect.getsource(module.Net.learn)


def run_schedule(
    module: ModuleType,
    variant: Variant,
    prm: dict[str, object],
    batches: int,
    second_lr: float | None = None,
    epochs: int | None = None,
):
    """Build the schedule and step it through `epochs` epochs (default
    epoch_max + EXTRA_EPOCHS), checking every group's rate after building and
    after every step. Returns the optimizer and the scheduler."""
    optimizer = make_optimizer(float(prm["lr"]), float(prm["momentum"]), second_lr)
    if variant.stepping == "batch":
        scheduler = module.build_lr_scheduler(optimizer, prm, batches)
    else:
        scheduler = module.build_lr_scheduler(optimizer, prm)
    check_rates(optimizer, "after building")
    if epochs is None:
        epochs = int(prm["epoch_max"]) + EXTRA_EPOCHS
    hold = variant.stepping == "batch" and holds_at_budget(module)
    for epoch in range(1, epochs + 1):
        # The parameter has no gradient, so SGD leaves it alone: one call an
        # epoch is enough to keep torch's step-order check satisfied.
        optimizer.step()
        if variant.stepping == "epoch":
            scheduler.step()
            check_rates(optimizer, f"after epoch {epoch}")
            continue
        for batch in range(1, batches + 1):
            if hold and not scheduler.last_epoch + 1 < scheduler.total_steps:
                continue
            scheduler.step()
            check_rates(optimizer, f"after batch {batch} of epoch {epoch}")
    return optimizer, scheduler


# ----------------------------------------------------------------------------
# The property: any draw of the search
# ----------------------------------------------------------------------------

ALL_0 = [0.0] * MAX_KEYS
ALL_1 = [1.0] * MAX_KEYS
# OneCycleLR: pct_start = 0.1 + 0.4 * key, so these draws make
# pct_start * total_steps == 1 exactly (torch divides by zero there).
PCT_0_10 = [0.0, 0.5, 0.5, 0.5, 0.5]  # pct_start 0.1, 10 steps
PCT_1_2 = [1.0, 0.5, 0.5, 0.5, 0.5]  # pct_start 0.5, 2 steps
PCT_Q_5 = [0.25, 0.5, 0.5, 0.5, 0.5]  # pct_start 0.2, 5 steps


@pytest.mark.parametrize("name", IDS)
@SEARCH
@given(
    values=KEY_VALUES,
    lr=LR,
    momentum=MOMENTUM,
    epoch_max=EPOCH_MAX,
    batches=BATCHES,
    second=st.none() | LR,
)
# every key at an end of its range, shortest and longest runs
@example(values=ALL_0, lr=0.01, momentum=0.9, epoch_max=1, batches=1, second=None)
@example(values=ALL_1, lr=0.01, momentum=0.9, epoch_max=1, batches=1, second=None)
@example(values=ALL_0, lr=1e-4, momentum=0.0, epoch_max=60, batches=50, second=1.0)
@example(values=ALL_1, lr=1.0, momentum=0.99, epoch_max=60, batches=50, second=1e-4)
@example(values=ALL_0, lr=1.0, momentum=0.99, epoch_max=2, batches=1, second=None)
@example(values=ALL_1, lr=1e-4, momentum=0.0, epoch_max=2, batches=1, second=None)
# OneCycleLR warm-up of exactly one batch
@example(values=PCT_0_10, lr=0.01, momentum=0.9, epoch_max=10, batches=1, second=None)
@example(values=PCT_0_10, lr=0.01, momentum=0.9, epoch_max=1, batches=10, second=0.1)
@example(values=PCT_1_2, lr=0.01, momentum=0.9, epoch_max=2, batches=1, second=None)
@example(values=PCT_1_2, lr=0.01, momentum=0.9, epoch_max=1, batches=2, second=None)
@example(values=PCT_Q_5, lr=0.01, momentum=0.9, epoch_max=5, batches=1, second=None)
@example(values=PCT_Q_5, lr=0.01, momentum=0.9, epoch_max=1, batches=5, second=None)
def test_any_search_draw_builds_steps_and_keeps_the_rate_sane(
    generated_dir: Path,
    name: str,
    values: list[float],
    lr: float,
    momentum: float,
    epoch_max: int,
    batches: int,
    second: float | None,
) -> None:
    variant = catalog.get(name)
    module = load(generated_dir, variant)
    prm = make_prm(variant, values, lr, momentum, epoch_max)
    run_schedule(module, variant, prm, batches, second_lr=second)


# ----------------------------------------------------------------------------
# Deterministic corners the random search is unlikely to hit
# ----------------------------------------------------------------------------

ONE_CYCLE = [v for v in VARIANTS if v.family == "OneCycleLR"]
CYCLIC = [v for v in VARIANTS if v.family == "CyclicLR"]


def one_cycle_warm_up_draws(variant: Variant) -> list[tuple[float, int]]:
    """(pct_start key, total_steps) pairs whose mapped pct_start times
    total_steps is 1 exactly, or a float's width either side of 1."""
    mapping = variant.hparams[variant.keys.index("pct_start")].mapping
    assert isinstance(mapping, catalog.Linear)
    draws = set()
    for total in range(math.ceil(1 / mapping.high), math.floor(1 / mapping.low) + 1):
        x = (1 / total - mapping.low) / (mapping.high - mapping.low)
        for candidate in (x, math.nextafter(x, 0.0), math.nextafter(x, 1.0)):
            if 0.0 <= candidate <= 1.0:
                draws.add((candidate, total))
    return sorted(draws)


@pytest.mark.parametrize("variant", ONE_CYCLE, ids=[v.name for v in ONE_CYCLE])
@pytest.mark.parametrize("split", ["epochs", "batches"])
def test_one_cycle_warm_up_of_about_one_batch(
    generated_dir: Path, variant: Variant, split: str
) -> None:
    """pct_start * total_steps == 1 (torch: ZeroDivisionError) and its
    neighbours, the steps coming from epochs or from batches."""
    module = load(generated_dir, variant)
    draws = one_cycle_warm_up_draws(variant)
    exact = [
        (x, total)
        for x, total in draws
        if variant.real_args({k: x for k in variant.keys}, 1)["pct_start"] * total
        == 1
    ]
    assert exact, "no draw hits the trap; the test would prove nothing"
    for pct_key, total in draws:
        epoch_max, batches = (total, 1) if split == "epochs" else (1, total)
        for rest in (0.0, 1.0):
            values = [pct_key if k == "pct_start" else rest for k in variant.keys]
            prm = make_prm(variant, values, 0.01, 0.9, epoch_max)
            run_schedule(module, variant, prm, batches, second_lr=0.5)


# (epoch_max, batches per epoch): long runs, and short runs of real-size
# epochs (CIFAR-10 at batch 64 has 782 batches) whose 2 epochs past the
# budget hold as many cycles again.
LONG_RUNS = [(60, 50), (50, 782), (1, 782), (2, 749), (5, 299)]


@pytest.mark.parametrize("variant", CYCLIC, ids=[v.name for v in CYCLIC])
@pytest.mark.parametrize(
    ("epoch_max", "batches"), LONG_RUNS, ids=[f"{e}x{b}" for e, b in LONG_RUNS]
)
def test_cyclic_shortest_cycle_over_a_long_run(
    generated_dir: Path, variant: Variant, epoch_max: int, batches: int
) -> None:
    """The shortest cycle (every key 0) over thousands of batches: more than
    1024 cycles, where triangular2's 2.0 ** (cycle - 1) overflows."""
    module = load(generated_dir, variant)
    prm = make_prm(variant, [0.0] * len(variant.keys), 0.01, 0.9, epoch_max)
    run_schedule(module, variant, prm, batches, second_lr=1e-4)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_every_corner_of_the_key_cube(generated_dir: Path, variant: Variant) -> None:
    """Every key at 0 or at 1, in all combinations, over short and long runs."""
    module = load(generated_dir, variant)
    n = len(variant.keys)
    for bits in range(2**n):
        values = [float(bits >> i & 1) for i in range(n)]
        for epoch_max, batches in ((1, 1), (1, 2), (2, 1), (3, 7), (60, 1)):
            prm = make_prm(variant, values, 0.01, 0.9, epoch_max)
            run_schedule(module, variant, prm, batches, second_lr=1e-4)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_schedule_pickles_mid_run(generated_dir: Path, variant: Variant) -> None:
    """The scheduler (rate rules included) pickles mid-run and carries on."""
    module = load(generated_dir, variant)
    prm = make_prm(variant, [0.5] * MAX_KEYS, 0.01, 0.9, 5)
    _, scheduler = run_schedule(module, variant, prm, 3, epochs=3)
    copy = pickle.loads(pickle.dumps(scheduler))
    assert copy.get_last_lr() == scheduler.get_last_lr()
    for step in range(3):  # within every budget (5 epochs of 3 batches)
        scheduler.optimizer.step()
        copy.optimizer.step()
        scheduler.step()
        copy.step()
        assert copy.get_last_lr() == scheduler.get_last_lr(), f"step {step}"


# ----------------------------------------------------------------------------
# End to end: the real Net trains with its own learn() at extreme draws
# ----------------------------------------------------------------------------

E2E_VARIANTS = [
    catalog.get(name)
    for name in (
        "OneCycleLR_aggressive",  # per batch, held past its 2-batch budget
        "SequentialLR_warmup_decay",  # per epoch, two chained schedulers
        "MultiplicativeLR_exponential",  # per epoch, a partial-bound rate rule
    )
]


@pytest.mark.parametrize("value", [0.0, 1.0], ids=["all_keys_0", "all_keys_1"])
@pytest.mark.parametrize("variant", E2E_VARIANTS, ids=[v.name for v in E2E_VARIANTS])
def test_net_trains_three_epochs_at_an_extreme_draw(
    generated_dir: Path, variant: Variant, value: float
) -> None:
    """epoch_max=1, 2 batches of 2 images, 3 epochs: past the budget."""
    module = load(generated_dir, variant)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: threads only contend
    try:
        train_three_epochs(module, variant, value)
    finally:
        torch.set_num_threads(threads)


def train_three_epochs(module: ModuleType, variant: Variant, value: float) -> None:
    torch.manual_seed(0)
    prm = make_prm(variant, [value] * MAX_KEYS, 0.01, 0.9, 1)
    net = module.Net((2, 3, 32, 32), (10,), prm, CPU)
    net.train_setup(prm)
    train_data = [
        (torch.randn(2, 3, 32, 32), torch.randint(0, 10, (2,))) for _ in range(2)
    ]
    logged = []
    for epoch in range(1, 4):
        net.train()
        net.learn(train_data)
        rate = net.optimizer.param_groups[0]["lr"]  # what LEMUR logs
        assert math.isfinite(rate) and rate >= 0, f"rate {rate!r} after epoch {epoch}"
        logged.append(rate)
    if variant.stepping == "batch" and holds_at_budget(module):
        # 1 epoch of 2 batches: the budget ends in epoch 1, then the rate holds
        assert logged[1] == logged[0] and logged[2] == logged[0], logged
    net.eval()
    with torch.no_grad():
        out = net(train_data[0][0])
    assert out.shape == (2, 10) and torch.isfinite(out).all()
