"""The 30 generated variants, held to NNEval's static checks, LEMUR's training
protocol and the closed form of their schedule.

Expected rates are written here, from torch's documentation of each scheduler
and the mappings catalog.py specifies; no lrgen code computes them. Times are
epochs t for per-epoch variants and batches done n = t * B for per-batch ones.
"""

from __future__ import annotations

import ast
import itertools
import math
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from lrgen import catalog
from lrgen.catalog import Variant

CPU = torch.device("cpu")
IN_SHAPE = (2, 3, 32, 32)
OUT_SHAPE = (10,)
TOLERANCE = {"rel": 1e-6, "abs": 1e-12}
BASE_KEYS = {"lr", "momentum", "dropout"}
HP_TXT_KEYS = BASE_KEYS | {"batch", "transform", "epoch_max"}

VARIANTS = list(catalog.VARIANTS)
PER_BATCH = [v for v in VARIANTS if v.stepping == "batch"]
ONE_CYCLE = [v for v in VARIANTS if v.family == "OneCycleLR"]


def by_name(variants: list[Variant]) -> Any:
    return pytest.mark.parametrize("variant", variants, ids=lambda v: v.name)


each_variant = by_name(VARIANTS)


# ----------------------------------------------------------------------------
# How a value stored in [0, 1] becomes torch's argument (catalog.py's spec)
# ----------------------------------------------------------------------------


def count(x: float, units: float) -> int:
    """A whole number of epochs or batches, at least 1."""
    return max(1, round(x * units))


def linear(x: float, low: float, high: float) -> float:
    return low + (high - low) * x


def log_scale(x: float, low: float, high: float) -> float:
    return low * (high / low) ** x


def whole(x: float, low: int, high: int) -> int:
    return low + round((high - low) * x)


# ----------------------------------------------------------------------------
# Closed forms. A schedule factory takes (hp, epochs, batches per epoch) and
# returns rate(lr, lowest, t): the rate of a param group whose base rate is
# lr, after t scheduler steps, when the optimizer's lowest base rate is
# `lowest` (the generated cosines take eta_min as min_lr times that).
# ----------------------------------------------------------------------------

Rate = Callable[[float, float, int], float]
Schedule = Callable[[dict[str, Any], int, int], Rate]


def half_cosine(start: float, end: float, progress: float) -> float:
    """From `start` at progress 0 to `end` at 1, back to `start` at 2."""
    return end + (start - end) * (1 + math.cos(math.pi * progress)) / 2


def step_lr(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    """lr * gamma ^ floor(t / step_size)."""
    step_size = count(hp["step_size"], epochs)
    gamma = log_scale(hp["gamma"], 0.01, 1)
    return lambda lr, lowest, t: lr * gamma ** (t // step_size)


def multi_step_lr(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    """lr * gamma ^ (milestones reached by t), a repeated milestone counting twice."""
    milestones = [count(hp[k], epochs) for k in hp if k.startswith("milestone_")]
    gamma = log_scale(hp["gamma"], 0.01, 1)
    return lambda lr, lowest, t: lr * gamma ** sum(t >= m for m in milestones)


def exponential_lr(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    gamma = linear(hp["gamma"], 0.8, 1)
    return lambda lr, lowest, t: lr * gamma**t


def polynomial_lr(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    """lr * (1 - min(t, T) / T) ^ power: 0 from T on."""
    total = count(hp["total_iters"], epochs)
    power = linear(hp["power"], 1, 5)
    return lambda lr, lowest, t: lr * (1 - min(t, total) / total) ** power


def cosine_annealing_lr(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    """Half a cosine from lr to eta_min over T; periodic past T, as torch's."""
    t_max = count(hp["t_max"], epochs)
    floor = linear(hp["min_lr"], 0, 0.5)
    return lambda lr, lowest, t: half_cosine(lr, floor * lowest, t / t_max)


def cosine_warm_restarts(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    """Cosine cycles of T_0, T_0 * T_mult, ... epochs, each restarting at lr."""
    t_0 = count(hp["t_0"], epochs)
    t_mult = whole(hp["t_mult"], 1, 3)
    floor = linear(hp["min_lr"], 0, 0.5)

    def rate(lr: float, lowest: float, t: int) -> float:
        into_cycle, cycle = t, t_0
        while into_cycle >= cycle:
            into_cycle, cycle = into_cycle - cycle, cycle * t_mult
        return half_cosine(lr, floor * lowest, into_cycle / cycle)

    return rate


def cyclic_lr(hp: dict[str, Any], epochs: int, batches: int, mode: str) -> Rate:
    """Triangle waves between min_lr * lr and lr, half a wave every `cycle`
    batches; triangular2 halves the height each wave, exp_range multiplies it by
    gamma ^ (n / total), so that it is gamma at the end of the run."""
    total = epochs * batches
    floor = linear(hp["min_lr"], 0, 0.5)
    half = count(linear(hp["cycle"], 0.001, 0.5), total)

    def rate(lr: float, lowest: float, n: int) -> float:
        wave, position = divmod(n, 2 * half)
        height = position / half if position <= half else 2 - position / half
        if mode == "triangular2":
            height *= 0.5**wave
        elif mode == "exp_range":
            height *= log_scale(hp["gamma"], 0.001, 1) ** (n / total)
        return floor * lr + (lr - floor * lr) * height

    return rate


def one_cycle_lr(hp: dict[str, Any], epochs: int, batches: int, anneal: str) -> Rate:
    """torch's two phases: lr / div_factor up to lr by step pct_start * total - 1,
    then down to that start / final_div_factor at step total - 1. A warm-up of
    exactly one batch becomes two (lrgen's guard against torch's division by
    zero)."""
    total = epochs * batches
    pct_start = linear(hp["pct_start"], 0.1, 0.5)
    if pct_start * total == 1:
        pct_start = 2 / total
    div_factor = log_scale(hp["div_factor"], 5, 125)
    final_div_factor = log_scale(hp["final_div_factor"], 10, 100000)
    warm_end, last = pct_start * total - 1, total - 1

    def rate(lr: float, lowest: float, n: int) -> float:
        start = lr / div_factor
        if n <= warm_end:
            high, low, progress = start, lr, n / warm_end
        else:
            high, low = lr, start / final_div_factor
            progress = (n - warm_end) / (last - warm_end)
        if anneal == "cos":
            return half_cosine(high, low, progress)
        return high + (low - high) * progress

    return rate


def linear_lr(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    """From start_factor * lr up to lr in total_iters epochs, then lr."""
    start = log_scale(hp["start_factor"], 0.001, 1)
    total = count(hp["total_iters"], epochs)
    return lambda lr, lowest, t: lr * (start + (1 - start) * min(t, total) / total)


def constant_lr(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    """factor * lr for the first total_iters epochs, then lr."""
    factor = log_scale(hp["factor"], 0.001, 1)
    total = count(hp["total_iters"], epochs)
    return lambda lr, lowest, t: lr * (factor if t < total else 1)


def multiplicative_lr(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    factor = linear(hp["factor"], 0.8, 1)
    return lambda lr, lowest, t: lr * factor**t


def step_times_cosine(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    """ChainedScheduler(StepLR, CosineAnnealingLR(T_max=epochs, eta_min=0)),
    both scaling the running rate: lr * gamma^(t // s) * (1 + cos(pi t / T)) / 2
    up to T. At t = T + 1 (mod 2T) torch's recursive cosine restarts by adding
    lr * (1 - cos(pi / T)) / 2 to a rate of 0, so the step decay so far is lost
    and counts again from that restart."""
    step_size = count(hp["step_size"], epochs)
    gamma = log_scale(hp["gamma"], 0.01, 1)
    t_max = epochs

    def rate(lr: float, lowest: float, t: int) -> float:
        restart = 0
        if t > t_max:
            restart = t_max + 1 + 2 * t_max * ((t - t_max - 1) // (2 * t_max))
        decays = t // step_size - restart // step_size
        return lr * gamma**decays * half_cosine(1, 0, t / t_max)

    return rate


def warmup_then_cosine(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    """SequentialLR: LinearLR from start_factor * lr for `warmup` epochs, then
    CosineAnnealingLR(T_max=max(1, epochs - warmup)) on t - warmup."""
    warmup = count(hp["warmup"], epochs)
    start = log_scale(hp["start_factor"], 0.001, 1)
    floor = linear(hp["min_lr"], 0, 0.5)
    t_max = max(1, epochs - warmup)

    def rate(lr: float, lowest: float, t: int) -> float:
        if t < warmup:
            return lr * (start + (1 - start) * t / warmup)
        return half_cosine(lr, floor * lowest, (t - warmup) / t_max)

    return rate


def lambda_linear(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    floor = linear(hp["min_lr"], 0, 0.5)
    return lambda lr, lowest, t: lr * (1 - (1 - floor) * min(t, epochs) / epochs)


def lambda_power(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    power = linear(hp["power"], 0, 2)
    return lambda lr, lowest, t: lr * (1 + t) ** -power


def lambda_exponential(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    final = log_scale(hp["final"], 0.001, 1)
    return lambda lr, lowest, t: lr * final ** (t / epochs)


def lambda_cosine(hp: dict[str, Any], epochs: int, batches: int) -> Rate:
    floor = linear(hp["min_lr"], 0, 0.5)
    return lambda lr, lowest, t: lr * half_cosine(1, floor, min(t, epochs) / epochs)


EXPECTED: dict[str, Schedule] = {
    "StepLR_default": step_lr,
    "MultiStepLR_milestones": multi_step_lr,
    "StepLR_long_decay": step_lr,
    "MultiStepLR_four_milestones": multi_step_lr,
    "ExponentialLR_default": exponential_lr,
    "PolynomialLR_quadratic": polynomial_lr,
    "PolynomialLR_cubic": polynomial_lr,
    "PolynomialLR_power_4": polynomial_lr,
    "CosineAnnealingLR_default": cosine_annealing_lr,
    "CosineAnnealingLR_with_min_lr": cosine_annealing_lr,
    "CosineAnnealingLR_high_min": cosine_annealing_lr,
    "CosineAnnealingWarmRestarts_T0_small": cosine_warm_restarts,
    "CosineAnnealingWarmRestarts_T0_large": cosine_warm_restarts,
    "CyclicLR_triangular": partial(cyclic_lr, mode="triangular"),
    "CyclicLR_triangular2": partial(cyclic_lr, mode="triangular2"),
    "CyclicLR_exp_range": partial(cyclic_lr, mode="exp_range"),
    "CyclicLR_small_cycle": partial(cyclic_lr, mode="triangular"),
    "OneCycleLR_default": partial(one_cycle_lr, anneal="cos"),
    "OneCycleLR_aggressive": partial(one_cycle_lr, anneal="cos"),
    "OneCycleLR_linear_anneal": partial(one_cycle_lr, anneal="linear"),
    "LinearLR_warmup": linear_lr,
    "ConstantLR_warmup": constant_lr,
    "MultiplicativeLR_exponential": multiplicative_lr,
    "ChainedScheduler_step_then_cosine": step_times_cosine,
    "SequentialLR_warmup_decay": warmup_then_cosine,
    "LambdaLR_linear_decay": lambda_linear,
    "LambdaLR_power_decay": lambda_power,
    "LambdaLR_exponential_decay": lambda_exponential,
    "LambdaLR_cosine_like": lambda_cosine,
    "LambdaLR_step_like": step_lr,
}


def expected_rates(
    variant: Variant,
    hp: dict[str, Any],
    *,
    epochs: int,
    batches: int,
    after: range,
    lrs: tuple[float, ...] | None = None,
) -> list[Any]:
    """The closed-form rate after each epoch in `after`: one number, or one per
    param group of base rates `lrs`. A per-batch schedule is stepped only within
    its budget of `epochs` x `batches` batches: from the budget's last batch
    (step epochs * batches - 1) on, its rate holds."""
    rate = EXPECTED[variant.name](hp, epochs, batches)
    if variant.stepping == "batch":
        last = epochs * batches - 1
        steps = [min(t * batches, last) for t in after]
    else:
        steps = list(after)
    group_lrs = lrs if lrs is not None else (hp["lr"],)
    lowest = min(group_lrs)
    rows = [[rate(lr, lowest, n) for lr in group_lrs] for n in steps]
    return rows if lrs is not None else [row[0] for row in rows]


# ----------------------------------------------------------------------------
# Ways to run a variant
# ----------------------------------------------------------------------------


class Probe(nn.Module):
    """A one-layer stand-in for ResNet18 running a variant's own `train_setup`
    and `learn`: the schedule and its stepping are the generated code's."""

    def __init__(self, module: ModuleType) -> None:
        super().__init__()
        self.device = CPU
        self.variant_net = module.Net
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    def train_setup(self, prm: dict[str, Any]) -> None:
        self.variant_net.train_setup(self, prm)

    def learn(self, train_data: list[Any]) -> Any:
        return self.variant_net.learn(self, train_data)


def probe_batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    return [(torch.randn(2, 4), torch.tensor([0, 2])) for _ in range(n)]


def lr_of(model: nn.Module) -> float:
    """The rate LEMUR logs after an epoch."""
    return model.optimizer.param_groups[0]["lr"]


def train_probe(
    module: ModuleType, prm: dict[str, Any], *, epochs: int, batches: int
) -> tuple[Probe, list[float]]:
    """LEMUR's protocol on a Probe; the rate logged after each epoch."""
    torch.manual_seed(0)
    probe, data = Probe(module), probe_batches(batches)
    probe.train_setup(prm)
    rates = []
    for _ in range(epochs):
        probe.train()
        probe.learn(data)
        rates.append(lr_of(probe))
    return probe, rates


def scheduled_rates(
    variant: Variant,
    module: ModuleType,
    prm: dict[str, Any],
    *,
    epochs: int,
    batches: int,
    lrs: tuple[float, ...] = (0.01,),
) -> list[list[float]]:
    """Each group's rate after 0..epochs epochs of the generated
    `build_lr_scheduler` on a network-free SGD optimizer, stepped as learn()
    steps it (a per-batch one only within its budget, `total_steps`)."""
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs]
    optimizer = torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)
    if variant.stepping == "batch":
        scheduler = module.build_lr_scheduler(optimizer, prm, batches)
    else:
        scheduler = module.build_lr_scheduler(optimizer, prm)
    budget = scheduler.total_steps if variant.stepping == "batch" else math.inf

    def now() -> list[float]:
        return [group["lr"] for group in optimizer.param_groups]

    rates = [now()]
    for _ in range(epochs):
        for _ in range(batches):
            optimizer.step()
            if variant.stepping == "batch" and scheduler.last_epoch + 1 < budget:
                scheduler.step()
        if variant.stepping == "epoch":
            scheduler.step()
        rates.append(now())
    return rates


# ----------------------------------------------------------------------------
# The table itself
# ----------------------------------------------------------------------------


def test_every_variant_has_a_closed_form() -> None:
    assert set(EXPECTED) == {v.name for v in VARIANTS}


# ----------------------------------------------------------------------------
# 1. What NNEval checks before training
# ----------------------------------------------------------------------------


def function_named(tree: ast.Module, name: str) -> ast.FunctionDef:
    found = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name
    ]
    assert len(found) == 1, f"expected one function {name}, found {len(found)}"
    return found[0]


def calls_to(node: ast.AST, dotted: str) -> list[ast.Call]:
    """Calls such as `self.scheduler.step()` whose callee ends with `dotted`."""
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and ast.unparse(n.func).endswith(dotted)
    ]


@each_variant
def test_defines_the_three_functions_nneval_looks_for(generated, variant) -> None:
    code = generated.code(variant)
    for name in ("supported_hyperparameters", "train_setup", "learn"):
        assert re.search(rf"\sdef {name}\(", code), f"no whitespace-led def {name}("


@each_variant
def test_declares_exactly_its_hyperparameters_as_a_literal(generated, variant) -> None:
    tree = ast.parse(generated.code(variant))
    first = function_named(tree, "supported_hyperparameters").body[0]
    assert isinstance(first, ast.Return)
    assert isinstance(first.value, (ast.Set, ast.List))
    keys = [elt.value for elt in first.value.elts if isinstance(elt, ast.Constant)]
    assert len(keys) == len(first.value.elts)
    assert all(isinstance(key, str) for key in keys)
    assert set(keys) == BASE_KEYS | set(variant.keys)


@each_variant
def test_each_key_is_quoted_twice_and_read_from_prm(generated, variant) -> None:
    code = generated.code(variant)
    for key in sorted(BASE_KEYS | set(variant.keys)):
        name = re.escape(key)
        quoted = re.findall(rf"(['\"]){name}\1", code)
        assert len(quoted) >= 2, f"{key!r} is quoted {len(quoted)} time(s)"
        read = rf"prm\[(['\"]){name}\1\]|prm\.get\((['\"]){name}\2"
        assert re.search(read, code), f"{key!r} is never read from prm"


@each_variant
def test_hp_txt_is_json_with_every_value_training_needs(generated, variant) -> None:
    hp = generated.hp(variant)
    assert HP_TXT_KEYS | set(variant.keys) <= set(hp)
    assert hp["epoch_max"] == generated.epoch_max
    for key in variant.keys:
        assert 0 <= hp[key] <= 1, f"{key}={hp[key]} is outside LEMUR's [0, 1]"


@each_variant
def test_holds_no_lambda(generated, variant) -> None:
    tree = ast.parse(generated.code(variant))
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
    assert not lines, f"lambda on line(s) {lines}: it pickles as nothing"


@each_variant
def test_scheduler_steps_after_the_optimizer(generated, variant) -> None:
    code = generated.code(variant)
    first_optimizer_step = code.index("optimizer.step()")
    scheduler_steps = [m.start() for m in re.finditer(r"scheduler\.step\(\)", code)]
    assert scheduler_steps, "the scheduler is never stepped"
    assert min(scheduler_steps) > first_optimizer_step, (
        "scheduler.step() comes before optimizer.step()"
    )

    learn = function_named(ast.parse(code), "learn")
    (loop,) = [n for n in learn.body if isinstance(n, ast.For)]
    (optimizer_step,) = calls_to(loop, "optimizer.step")
    (scheduler_step,) = calls_to(learn, "scheduler.step")
    if variant.stepping == "batch":
        assert scheduler_step in calls_to(loop, "scheduler.step")
        assert scheduler_step.lineno > optimizer_step.lineno
        assert "len(train_data)" in ast.unparse(learn)
    else:
        assert scheduler_step.lineno > loop.end_lineno


# ----------------------------------------------------------------------------
# 2-3. LEMUR's protocol on the real ResNet18, epoch_max=2, one epoch past it
# ----------------------------------------------------------------------------

RESNET_EPOCHS, RESNET_BATCHES = 3, 3


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """ResNet18 on a shared 2-core machine: one intra-op thread is ~10x faster
    than two threads competing with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass
class ResNetRun:
    model: nn.Module
    rates: list[float]


def resnet_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    return [
        (torch.randn(IN_SHAPE), torch.randint(0, OUT_SHAPE[0], (IN_SHAPE[0],)))
        for _ in range(RESNET_BATCHES)
    ]


@pytest.fixture(scope="module")
def resnet_run(generated) -> Callable[[Variant], ResNetRun]:
    """Each variant's ResNet18 trained once (3 epochs of 3 batches of 2)."""
    runs: dict[str, ResNetRun] = {}
    data = resnet_batches()

    def run(variant: Variant) -> ResNetRun:
        if variant.name not in runs:
            prm = generated.hp(variant)
            torch.manual_seed(0)
            model = generated.module(variant).Net(IN_SHAPE, OUT_SHAPE, prm, CPU)
            model.train_setup(prm)
            rates = []
            for _ in range(RESNET_EPOCHS):
                model.train()
                model.learn(data)
                rates.append(lr_of(model))
            runs[variant.name] = ResNetRun(model, rates)
        return runs[variant.name]

    return run


@each_variant
def test_resnet_forward_gives_one_logit_per_class(generated, variant) -> None:
    prm = generated.hp(variant)
    model = generated.module(variant).Net(IN_SHAPE, OUT_SHAPE, prm, CPU)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(IN_SHAPE)).shape == (2, 10)


@each_variant
def test_resnet_training_logs_the_closed_form_rate(generated, resnet_run, variant):
    rates = resnet_run(variant).rates
    expected = expected_rates(
        variant,
        generated.hp(variant),
        epochs=generated.epoch_max,
        batches=RESNET_BATCHES,
        after=range(1, RESNET_EPOCHS + 1),
    )
    assert rates == pytest.approx(expected, **TOLERANCE)


@each_variant
def test_trained_resnet_pickles_with_its_schedule(resnet_run, variant) -> None:
    model = resnet_run(variant).model
    clone = pickle.loads(pickle.dumps(model))
    assert lr_of(clone) == lr_of(model)
    assert clone.scheduler.optimizer is clone.optimizer
    if variant.stepping == "batch":
        assert clone.build_scheduler.args[0] is clone.optimizer


# ----------------------------------------------------------------------------
# 3-4. Seven epochs over a horizon of five, four batches each, on a Probe
# ----------------------------------------------------------------------------

EPOCHS, HORIZON, BATCHES = 7, 5, 4
HORIZONS = {
    "epoch_max=5": {"epoch_max": 5},
    "epoch=5": {"epoch": 5},
    "epoch_max=5,epoch=3": {"epoch_max": 5, "epoch": 3},
}


@pytest.mark.parametrize("horizon", list(HORIZONS.values()), ids=list(HORIZONS))
@each_variant
def test_schedule_follows_its_closed_form_past_the_horizon(
    generated, variant, horizon
) -> None:
    hp = generated.hp(variant)
    prm = {k: v for k, v in hp.items() if k != "epoch_max"} | horizon
    _, rates = train_probe(
        generated.module(variant), prm, epochs=EPOCHS, batches=BATCHES
    )
    expected = expected_rates(
        variant, hp, epochs=HORIZON, batches=BATCHES, after=range(1, EPOCHS + 1)
    )
    assert rates == pytest.approx(expected, **TOLERANCE)


@each_variant
def test_without_a_horizon_setup_or_first_learn_names_epoch_max(
    generated, variant
) -> None:
    prm = {k: v for k, v in generated.hp(variant).items() if k != "epoch_max"}
    probe = Probe(generated.module(variant))
    if variant.stepping == "epoch":
        with pytest.raises(KeyError, match="'epoch_max'"):
            probe.train_setup(prm)
    else:
        probe.train_setup(prm)
        with pytest.raises(KeyError, match="'epoch_max'"):
            probe.learn(probe_batches(BATCHES))


GROUP_LRS = (0.01, 0.05)


@each_variant
def test_each_param_group_follows_its_own_closed_form(generated, variant) -> None:
    hp = generated.hp(variant) | {"epoch_max": HORIZON}
    rates = scheduled_rates(
        variant,
        generated.module(variant),
        hp,
        epochs=EPOCHS,
        batches=BATCHES,
        lrs=GROUP_LRS,
    )
    expected = expected_rates(
        variant,
        hp,
        epochs=HORIZON,
        batches=BATCHES,
        after=range(EPOCHS + 1),
        lrs=GROUP_LRS,
    )
    for group, lr in enumerate(GROUP_LRS):
        actual = [row[group] for row in rates]
        wanted = [row[group] for row in expected]
        assert actual == pytest.approx(wanted, **TOLERANCE), f"group of lr {lr}"


EXTREMES = {"all 0": 0.0, "all 1": 1.0, "all 0.37": 0.37}


@pytest.mark.parametrize("stored", list(EXTREMES.values()), ids=list(EXTREMES))
@each_variant
def test_any_stored_value_in_0_1_gives_its_closed_form(
    generated, variant, stored
) -> None:
    """LEMUR's search may store any value in [0, 1] in a scheduler key."""
    hp = generated.hp(variant) | {"epoch_max": HORIZON}
    hp |= {key: stored for key in variant.keys}
    rates = scheduled_rates(
        variant, generated.module(variant), hp, epochs=EPOCHS, batches=BATCHES
    )
    expected = expected_rates(
        variant, hp, epochs=HORIZON, batches=BATCHES, after=range(EPOCHS + 1)
    )
    assert [row[0] for row in rates] == pytest.approx(expected, **TOLERANCE)


@by_name(ONE_CYCLE)
def test_one_cycle_with_a_one_batch_warm_up_gets_two(generated, variant) -> None:
    """pct_start 0.1 of 10 batches, a warm-up torch divides by zero in, becomes
    two batches: the rate peaks after the first batch instead."""
    hp = generated.hp(variant) | {"epoch_max": 10, "pct_start": 0.0}
    rates = scheduled_rates(
        variant, generated.module(variant), hp, epochs=12, batches=1
    )
    expected = expected_rates(variant, hp, epochs=10, batches=1, after=range(13))
    assert [row[0] for row in rates] == pytest.approx(expected, **TOLERANCE)
    assert rates[1][0] == pytest.approx(hp["lr"], **TOLERANCE)


# ----------------------------------------------------------------------------
# 5. Per-batch budgets: two epochs past epoch_max
# ----------------------------------------------------------------------------


@by_name(PER_BATCH)
def test_per_batch_schedule_trains_two_epochs_past_its_horizon(
    generated, variant
) -> None:
    """The budget is epoch_max x the batches of the first learn() call: the
    rate follows the closed form up to the budget's last batch, then holds
    there for the two epochs past epoch_max (CyclicLR stops cycling,
    OneCycleLR never overruns)."""
    hp = generated.hp(variant)
    epoch_max, batches = hp["epoch_max"], RESNET_BATCHES
    epochs = epoch_max + 2
    probe, rates = train_probe(
        generated.module(variant), hp, epochs=epochs, batches=batches
    )
    expected = expected_rates(
        variant,
        hp,
        epochs=epoch_max,
        batches=batches,
        after=range(1, epochs + 1),
    )
    assert rates == pytest.approx(expected, **TOLERANCE)

    budget = epoch_max * batches
    assert probe.scheduler.last_epoch == budget - 1
    rate = EXPECTED[variant.name](hp, epoch_max, batches)
    held = rate(hp["lr"], hp["lr"], budget - 1)
    assert rates[epoch_max - 1 :] == pytest.approx([held] * 3, **TOLERANCE)
    if variant.family == "CyclicLR":
        # stepped on, torch's CyclicLR would have gone on cycling
        past = (epoch_max + 1, epoch_max + 2)
        cycled_on = [rate(hp["lr"], hp["lr"], t * batches) for t in past]
        assert cycled_on != pytest.approx([held] * 2, **TOLERANCE)


@by_name(ONE_CYCLE)
def test_one_cycle_holds_its_final_rate_past_its_horizon(generated, variant) -> None:
    hp = generated.hp(variant)
    epoch_max = hp["epoch_max"]
    _, rates = train_probe(
        generated.module(variant), hp, epochs=epoch_max + 2, batches=RESNET_BATCHES
    )
    start = hp["lr"] / log_scale(hp["div_factor"], 5, 125)
    final = start / log_scale(hp["final_div_factor"], 10, 100000)
    assert rates[epoch_max - 1 :] == pytest.approx([final] * 3, **TOLERANCE)


# ----------------------------------------------------------------------------
# 6. A checkpoint's scheduler state resumes in a freshly built scheduler
# ----------------------------------------------------------------------------


@each_variant
def test_scheduler_state_resumes_in_a_fresh_scheduler(generated, variant) -> None:
    module = generated.module(variant)
    prm = generated.hp(variant) | {"epoch_max": HORIZON}
    data = probe_batches(BATCHES)
    original, _ = train_probe(module, prm, epochs=3, batches=BATCHES)
    checkpoint = pickle.dumps(
        {
            "model": original.state_dict(),
            "optimizer": original.optimizer.state_dict(),
            "scheduler": original.scheduler.state_dict(),
        }
    )

    # Restore in torch's documented order: scheduler built, then the states.
    resumed = Probe(module)
    resumed.train_setup(prm)
    if variant.stepping == "batch":
        resumed.scheduler = resumed.build_scheduler(len(data))
    state = pickle.loads(checkpoint)
    if variant.stepping == "batch":  # the budget travels with the state
        assert state["scheduler"]["total_steps"] == HORIZON * BATCHES
    resumed.load_state_dict(state["model"])
    resumed.optimizer.load_state_dict(state["optimizer"])
    resumed.scheduler.load_state_dict(state["scheduler"])

    continued, restored = [], []
    for _ in range(3, EPOCHS):
        original.learn(data)
        resumed.learn(data)
        continued.append(lr_of(original))
        restored.append(lr_of(resumed))
    expected = expected_rates(
        variant, prm, epochs=HORIZON, batches=BATCHES, after=range(4, EPOCHS + 1)
    )
    assert restored == pytest.approx(continued, **TOLERANCE)
    assert restored == pytest.approx(expected, **TOLERANCE)


# ----------------------------------------------------------------------------
# 7. The 30 defaults are 30 different schedules
# ----------------------------------------------------------------------------

MIN_DISTANCE = 0.01
DIVERSITY_BATCHES = 100


def test_default_schedules_differ_pairwise(generated_default) -> None:
    """Over epochs 1..50 with 100 batches an epoch, every two variants' rate / lr
    differ by at least 0.01 at some epoch."""
    epochs = generated_default.epoch_max
    curves: dict[str, list[float]] = {}
    for variant in VARIANTS:
        hp = generated_default.hp(variant)
        rates = scheduled_rates(
            variant,
            generated_default.module(variant),
            hp,
            epochs=epochs,
            batches=DIVERSITY_BATCHES,
        )
        curves[variant.name] = [row[0] / hp["lr"] for row in rates[1:]]

    distances = {
        (a, b): max(abs(x - y) for x, y in zip(curves[a], curves[b], strict=True))
        for a, b in itertools.combinations(curves, 2)
    }
    (closest, distance), *_ = sorted(distances.items(), key=lambda item: item[1])
    too_close = {pair: d for pair, d in distances.items() if d < MIN_DISTANCE}
    assert not too_close, (
        f"closest pair {closest[0]} / {closest[1]}: max |rate/lr difference| "
        f"{distance:.4g} < {MIN_DISTANCE}; all too close: {too_close}"
    )
