"""The catalog of learning-rate-scheduler variants lrgen generates."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from typing import Literal

Stepping = Literal["epoch", "batch"]

BASE_DEFAULTS: dict[str, object] = {
    "lr": 0.01,
    "momentum": 0.9,
    "dropout": 0.2,
    "batch": 64,
    "transform": "norm_256_flip",
}
"""The non-scheduler values every `hp.txt` carries (NNEval's own defaults)."""

DEFAULT_EPOCH_MAX = 50


class UnknownVariantError(LookupError):
    """A variant name or pattern that matches nothing in the catalog."""


def _number(value: float) -> str:
    """Python text for a range bound, as short as it stays exact."""
    value = round(float(value), 12)
    return repr(int(value)) if value.is_integer() else repr(value)


# ----------------------------------------------------------------------------
# Mappings: how a value stored in [0, 1] becomes the argument torch receives.
# Each gives Python text (the `{x}` placeholder is filled by the codemod with
# `prm['key']`) and the same mapping as a number, for schedules computed here.
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """A whole number of `unit` (epochs or batches), at least 1: the share
    of it spread evenly over [low, high]."""

    unit: Literal["epochs", "total_steps"]
    low: float = 0.0
    high: float = 1.0

    @property
    def template(self) -> str:
        share = Linear(self.low, self.high).template
        if (self.low, self.high) == (0, 1):
            share = "{x}"
        elif self.low != 0:
            share = f"({share})"
        return f"max(1, round({share} * {self.unit}))"

    def real(self, x: float, scope: MappingType[str, int]) -> int:
        share = Linear(self.low, self.high).real(x, scope)
        return max(1, round(share * scope[self.unit]))

    def describe(self) -> str:
        if self.unit == "epochs" and (self.low, self.high) == (0, 1):
            return "1 .. epoch_max"
        unit = "epoch_max" if self.unit == "epochs" else "all batches"
        return f"{self.low:.1%} .. {self.high:.0%} of {unit}"


@dataclass(frozen=True)
class Linear:
    """A value spread evenly over [low, high]."""

    low: float
    high: float

    @property
    def template(self) -> str:
        span = _number(self.high - self.low)
        if self.low == 0:
            return f"{span} * {{x}}"
        return f"{_number(self.low)} + {span} * {{x}}"

    def real(self, x: float, scope: MappingType[str, int]) -> float:
        return self.low + (self.high - self.low) * x

    def describe(self) -> str:
        return f"{_number(self.low)} .. {_number(self.high)}"


@dataclass(frozen=True)
class Log:
    """A value spread evenly in log scale over [low, high], low > 0."""

    low: float
    high: float

    @property
    def template(self) -> str:
        return f"{_number(self.low)} * {_number(self.high / self.low)} ** {{x}}"

    def real(self, x: float, scope: MappingType[str, int]) -> float:
        return float(self.low * (self.high / self.low) ** x)

    def describe(self) -> str:
        return f"{_number(self.low)} .. {_number(self.high)} (log)"


@dataclass(frozen=True)
class Whole:
    """A whole number in [low, high]."""

    low: int
    high: int

    @property
    def template(self) -> str:
        return f"{self.low} + round({self.high - self.low} * {{x}})"

    def real(self, x: float, scope: MappingType[str, int]) -> int:
        return self.low + round((self.high - self.low) * x)

    def describe(self) -> str:
        return f"{self.low} .. {self.high} (whole)"


Mapping = Count | Linear | Log | Whole


@dataclass(frozen=True)
class HParam:
    """One scheduler hyperparameter: stored in [0, 1], mapped in code."""

    key: str
    default: float
    mapping: Mapping
    meaning: str

    def real(self, x: float, scope: MappingType[str, int]) -> float:
        return self.mapping.real(x, scope)


# ----------------------------------------------------------------------------
# Builder templates: the end of the module-level function `build_lr_scheduler`
# the codemod adds to a model. Before it, the function binds `epochs` (the
# schedule's horizon), for per-batch variants `total_steps` (the batches the
# horizon holds), and one local per hyperparameter, named as its key, holding
# the mapped value. `{name}` stands for a literal of `fixed` or for `{rule}`,
# the rate rule bound with functools.partial. A per-epoch template returns the
# scheduler; a per-batch one binds it to `scheduler`, and the function then
# sets its budget (`scheduler.total_steps = total_steps`) and returns it.
# ----------------------------------------------------------------------------

_STEP_LR = """
return lr_scheduler.StepLR(
    optimizer,
    step_size=step_size,
    gamma=gamma,
)
"""

_MULTI_STEP_LR_2 = """
return lr_scheduler.MultiStepLR(
    optimizer,
    milestones=sorted([milestone_1, milestone_2]),
    gamma=gamma,
)
"""

_MULTI_STEP_LR_4 = """
return lr_scheduler.MultiStepLR(
    optimizer,
    milestones=sorted([milestone_1, milestone_2, milestone_3, milestone_4]),
    gamma=gamma,
)
"""

_EXPONENTIAL_LR = """
return lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
"""

_POLYNOMIAL_LR = """
return lr_scheduler.PolynomialLR(
    optimizer,
    total_iters=total_iters,
    power=power,
)
"""

# torch's eta_min is a single rate for all parameter groups, so the cosines'
# floor is min_lr times the lowest group's rate: every group anneals from its
# own rate, and none would climb to a floor above it.
_SHARED_FLOOR = """
# eta_min is one rate for all groups: min_lr of the lowest group's rate
lowest_lr = min(group['lr'] for group in optimizer.param_groups)"""

_COSINE_ANNEALING_LR = _SHARED_FLOOR + """
return lr_scheduler.CosineAnnealingLR(
    optimizer,
    T_max=t_max,
    eta_min=min_lr * lowest_lr,
)
"""

_COSINE_ANNEALING_WARM_RESTARTS = _SHARED_FLOOR + """
return lr_scheduler.CosineAnnealingWarmRestarts(
    optimizer,
    T_0=t_0,
    T_mult=t_mult,
    eta_min=min_lr * lowest_lr,
)
"""

_CYCLIC_LR = """
scheduler = lr_scheduler.CyclicLR(
    optimizer,
    base_lr=[min_lr * group['lr'] for group in optimizer.param_groups],
    max_lr=[group['lr'] for group in optimizer.param_groups],
    step_size_up=cycle,
    mode={mode},
    cycle_momentum=False,
)
"""

# torch's own mode='triangular2' computes 1 / 2 ** (cycle - 1), which
# overflows past cycle 1024 (short cycles, long runs); the same halving as a
# rule falls to 0 instead.
_CYCLIC_LR_HALVING = """
scheduler = lr_scheduler.CyclicLR(
    optimizer,
    base_lr=[min_lr * group['lr'] for group in optimizer.param_groups],
    max_lr=[group['lr'] for group in optimizer.param_groups],
    step_size_up=cycle,
    scale_fn=halve_each_cycle,
    scale_mode='cycle',
    cycle_momentum=False,
)
"""

_CYCLIC_LR_EXP_RANGE = """
scheduler = lr_scheduler.CyclicLR(
    optimizer,
    base_lr=[min_lr * group['lr'] for group in optimizer.param_groups],
    max_lr=[group['lr'] for group in optimizer.param_groups],
    step_size_up=cycle,
    mode={mode},
    gamma=gamma ** (1 / total_steps),
    cycle_momentum=False,
)
"""

_ONE_CYCLE_LR = """
if pct_start * total_steps == 1:
    # torch divides by zero when the warm-up is exactly one batch long
    pct_start = 2 / total_steps
scheduler = lr_scheduler.OneCycleLR(
    optimizer,
    max_lr=[group['lr'] for group in optimizer.param_groups],
    total_steps=total_steps,
    pct_start=pct_start,
    anneal_strategy={anneal_strategy},
    cycle_momentum=False,
    div_factor=div_factor,
    final_div_factor=final_div_factor,
)
"""

_LINEAR_LR = """
return lr_scheduler.LinearLR(
    optimizer,
    start_factor=start_factor,
    total_iters=total_iters,
)
"""

_CONSTANT_LR = """
return lr_scheduler.ConstantLR(
    optimizer,
    factor=factor,
    total_iters=total_iters,
)
"""

_MULTIPLICATIVE_LR = """
return lr_scheduler.MultiplicativeLR(
    optimizer,
    lr_lambda={rule},
)
"""

_CHAINED_SCHEDULER = """
return lr_scheduler.ChainedScheduler(
    [
        lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma),
        lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs),
    ]
)
"""

_SEQUENTIAL_LR = _SHARED_FLOOR + """
return lr_scheduler.SequentialLR(
    optimizer,
    schedulers=[
        lr_scheduler.LinearLR(
            optimizer, start_factor=start_factor, total_iters=warmup
        ),
        lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, epochs - warmup), eta_min=min_lr * lowest_lr
        ),
    ],
    milestones=[warmup],
)
"""

_LAMBDA_LR = """
return lr_scheduler.LambdaLR(
    optimizer,
    lr_lambda={rule},
)
"""

# Rate rules for LambdaLR, MultiplicativeLR and CyclicLR: module-level
# functions (bound with functools.partial where they take values), so the
# model pickles and the state round-trips.
RULES: dict[str, str] = {
    "constant_factor": '''
def constant_factor(epoch, factor):
    """Multiply the rate by `factor` every epoch."""
    return factor
''',
    "halve_each_cycle": '''
def halve_each_cycle(cycle):
    """Height of CyclicLR's wave in cycle 1, 2, 3, ...: 1, 1/2, 1/4, ..."""
    return 0.5 ** (cycle - 1)
''',
    "linear_decay": '''
def linear_decay(epoch, epochs, min_lr):
    """Fall linearly from 1 to `min_lr` over `epochs`, then hold."""
    return 1 - (1 - min_lr) * min(epoch, epochs) / epochs
''',
    "power_decay": '''
def power_decay(epoch, power):
    """Inverse power decay: (1 + epoch) ** -power."""
    return (1 + epoch) ** -power
''',
    "exponential_decay": '''
def exponential_decay(epoch, epochs, final):
    """Decay exponentially to `final` at `epochs`, and on past it."""
    return final ** (epoch / epochs)
''',
    "cosine_decay": '''
def cosine_decay(epoch, epochs, min_lr):
    """Half a cosine from 1 down to `min_lr` over `epochs`, then hold."""
    progress = min(epoch, epochs) / epochs
    return min_lr + (1 - min_lr) * (1 + math.cos(math.pi * progress)) / 2
''',
    "step_decay": '''
def step_decay(epoch, step_size, gamma):
    """Multiply the rate by `gamma` every `step_size` epochs."""
    return gamma ** (epoch // step_size)
''',
}


@dataclass(frozen=True)
class Variant:
    """One entry of the catalog: a named, fully specified schedule."""

    number: int
    name: str
    family: str
    classes: tuple[str, ...]
    stepping: Stepping
    hparams: tuple[HParam, ...]
    template: str
    summary: str
    fixed: dict[str, str] = field(default_factory=dict)
    rule: str | None = None
    rule_args: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"A0_{self.number:03d}"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(h.key for h in self.hparams)

    def defaults(self) -> dict[str, float]:
        return {h.key: h.default for h in self.hparams}

    def real_args(
        self, values: MappingType[str, float], epochs: int, total_steps: int = 0
    ) -> dict[str, float]:
        """Each hyperparameter's value as torch receives it."""
        scope = {"epochs": epochs, "total_steps": total_steps}
        return {h.key: h.real(float(values[h.key]), scope) for h in self.hparams}


# Mappings shared by several variants.
EPOCHS = Count("epochs")
# A half cycle of at least 0.1% of the run keeps triangular2's halvings (one
# a cycle) far from the float range torch computes them in.
HALF_CYCLE = Count("total_steps", 0.001, 0.5)
DECAY = Log(0.01, 1.0)
FLOOR = Linear(0.0, 0.5)
FACTOR = Log(0.001, 1.0)


def _h(key: str, default: float, mapping: Mapping, meaning: str) -> HParam:
    return HParam(key, default, mapping, meaning)


def _step_size(default: float) -> HParam:
    return _h("step_size", default, EPOCHS, "epochs between decays")


def _gamma(default: float) -> HParam:
    return _h("gamma", default, DECAY, "factor applied at each decay")


def _milestone(n: int, default: float) -> HParam:
    return _h(f"milestone_{n}", default, EPOCHS, f"epoch of decay {n}")


def _min_lr(default: float) -> HParam:
    return _h("min_lr", default, FLOOR, "lowest rate, as a fraction of lr")


def _cycle(default: float) -> HParam:
    return _h("cycle", default, HALF_CYCLE, "batches of a half cycle")


def _cyclic(number: int, name: str, mode: str, cycle: float, summary: str) -> Variant:
    return Variant(
        number, name, "CyclicLR", ("CyclicLR",), "batch",
        (_min_lr(0.1), _cycle(cycle)), _CYCLIC_LR, summary,
        fixed={"mode": mode},
    )  # fmt: skip


def _one_cycle(
    number: int, name: str, anneal: str, defaults: tuple[float, float, float],
    summary: str,
) -> Variant:
    pct, div, final_div = defaults
    return Variant(
        number, name, "OneCycleLR", ("OneCycleLR",), "batch",
        (
            _h("pct_start", pct, Linear(0.1, 0.5), "share of the run warming up"),
            _h("div_factor", div, Log(5, 125), "lr / starting rate"),
            _h("final_div_factor", final_div, Log(10, 100000),
               "starting rate / final rate"),
        ),
        _ONE_CYCLE_LR, summary, fixed={"anneal_strategy": anneal},
    )  # fmt: skip


def _lambda(
    number: int, name: str, rule: str, hparams: tuple[HParam, ...],
    rule_args: tuple[str, ...], summary: str,
) -> Variant:
    return Variant(
        number, name, "LambdaLR", ("LambdaLR",), "epoch", hparams, _LAMBDA_LR,
        summary, rule=rule, rule_args=rule_args,
    )  # fmt: skip


_T_MAX = _h("t_max", 1.0, EPOCHS, "epochs of the half cosine")

VARIANTS: tuple[Variant, ...] = (
    Variant(
        1, "StepLR_default", "StepLR", ("StepLR",), "epoch",
        (_step_size(0.3), _gamma(0.5)), _STEP_LR,
        "Divide the rate by 10 every 30% of the run.",
    ),
    Variant(
        2, "MultiStepLR_milestones", "MultiStepLR", ("MultiStepLR",), "epoch",
        (_milestone(1, 0.5), _milestone(2, 0.75), _gamma(0.5)), _MULTI_STEP_LR_2,
        "Divide the rate by 10 at half and at three quarters of the run.",
    ),
    Variant(
        3, "StepLR_long_decay", "StepLR", ("StepLR",), "epoch",
        (_step_size(0.1), _gamma(0.95)), _STEP_LR,
        "Many gentle decays: about x0.8 every 10% of the run.",
    ),
    Variant(
        4, "MultiStepLR_four_milestones", "MultiStepLR", ("MultiStepLR",), "epoch",
        (_milestone(1, 0.2), _milestone(2, 0.4), _milestone(3, 0.6),
         _milestone(4, 0.8), _gamma(0.85)),
        _MULTI_STEP_LR_4,
        "Halve the rate at 20%, 40%, 60% and 80% of the run.",
    ),
    Variant(
        5, "ExponentialLR_default", "ExponentialLR", ("ExponentialLR",), "epoch",
        (_h("gamma", 0.75, Linear(0.8, 1.0), "factor applied every epoch"),),
        _EXPONENTIAL_LR,
        "Multiply the rate by 0.95 every epoch.",
    ),
    Variant(
        6, "PolynomialLR_quadratic", "PolynomialLR", ("PolynomialLR",), "epoch",
        (_h("total_iters", 1.0, EPOCHS, "epochs until the rate reaches 0"),
         _h("power", 0.25, Linear(1, 5), "exponent of the decay")),
        _POLYNOMIAL_LR,
        "Fall to 0 along (1 - t)^2 over the run.",
    ),
    Variant(
        7, "PolynomialLR_cubic", "PolynomialLR", ("PolynomialLR",), "epoch",
        (_h("total_iters", 1.0, EPOCHS, "epochs until the rate reaches 0"),
         _h("power", 0.5, Linear(1, 5), "exponent of the decay")),
        _POLYNOMIAL_LR,
        "Fall to 0 along (1 - t)^3 over the run.",
    ),
    Variant(
        8, "PolynomialLR_power_4", "PolynomialLR", ("PolynomialLR",), "epoch",
        (_h("total_iters", 1.0, EPOCHS, "epochs until the rate reaches 0"),
         _h("power", 0.75, Linear(1, 5), "exponent of the decay")),
        _POLYNOMIAL_LR,
        "Fall to 0 along (1 - t)^4 over the run.",
    ),
    Variant(
        9, "CosineAnnealingLR_default", "CosineAnnealingLR",
        ("CosineAnnealingLR",), "epoch", (_T_MAX, _min_lr(0.0)),
        _COSINE_ANNEALING_LR,
        "Half a cosine from lr down to 0 over the run.",
    ),
    Variant(
        10, "CosineAnnealingLR_with_min_lr", "CosineAnnealingLR",
        ("CosineAnnealingLR",), "epoch", (_T_MAX, _min_lr(0.1)),
        _COSINE_ANNEALING_LR,
        "Half a cosine from lr down to 5% of lr over the run.",
    ),
    Variant(
        11, "CosineAnnealingLR_high_min", "CosineAnnealingLR",
        ("CosineAnnealingLR",), "epoch", (_T_MAX, _min_lr(0.4)),
        _COSINE_ANNEALING_LR,
        "Half a cosine from lr down to 20% of lr over the run.",
    ),
    Variant(
        12, "CosineAnnealingWarmRestarts_T0_small", "CosineAnnealingWarmRestarts",
        ("CosineAnnealingWarmRestarts",), "epoch",
        (_h("t_0", 0.1, EPOCHS, "epochs of the first cycle"),
         _h("t_mult", 0.5, Whole(1, 3), "growth of each next cycle"),
         _min_lr(0.0)),
        _COSINE_ANNEALING_WARM_RESTARTS,
        "Cosine cycles restarting at lr: the first 10% of the run, each next "
        "twice as long.",
    ),
    Variant(
        13, "CosineAnnealingWarmRestarts_T0_large", "CosineAnnealingWarmRestarts",
        ("CosineAnnealingWarmRestarts",), "epoch",
        (_h("t_0", 0.4, EPOCHS, "epochs of the first cycle"),
         _h("t_mult", 0.0, Whole(1, 3), "growth of each next cycle"),
         _min_lr(0.0)),
        _COSINE_ANNEALING_WARM_RESTARTS,
        "Cosine cycles of 40% of the run each, restarting at lr.",
    ),
    _cyclic(14, "CyclicLR_triangular", "triangular", 0.2,
            "Triangle waves between 5% of lr and lr, five cycles a run."),
    Variant(
        15, "CyclicLR_triangular2", "CyclicLR", ("CyclicLR",), "batch",
        (_min_lr(0.1), _cycle(0.2)), _CYCLIC_LR_HALVING,
        "Triangle waves whose height halves every cycle, five cycles a run.",
        rule="halve_each_cycle",
    ),
    Variant(
        16, "CyclicLR_exp_range", "CyclicLR", ("CyclicLR",), "batch",
        (_min_lr(0.1), _cycle(0.2),
         _h("gamma", 0.5, FACTOR, "wave height left at the end of the run")),
        _CYCLIC_LR_EXP_RANGE,
        "Triangle waves whose height decays exponentially, to 3% at the end.",
        fixed={"mode": "exp_range"},
    ),
    _cyclic(17, "CyclicLR_small_cycle", "triangular", 0.03,
            "Short triangle waves: a cycle every 3% of the run."),
    _one_cycle(18, "OneCycleLR_default", "cos", (0.5, 0.5, 0.75),
               "One cycle: warm up over 30% of the run from lr/25 to lr, "
               "then anneal to lr/25e4."),
    _one_cycle(19, "OneCycleLR_aggressive", "cos", (0.0, 0.5, 1.0),
               "One cycle with a short warm-up (10% of the run) and a deep "
               "final decay (lr/25e5)."),
    _one_cycle(20, "OneCycleLR_linear_anneal", "linear", (0.5, 0.5, 0.75),
               "One cycle as the default, with linear instead of cosine "
               "ramps."),
    Variant(
        21, "LinearLR_warmup", "LinearLR", ("LinearLR",), "epoch",
        (_h("start_factor", 0.5, FACTOR, "starting rate as a fraction of lr"),
         _h("total_iters", 0.1, EPOCHS, "epochs of warm-up")),
        _LINEAR_LR,
        "Warm up linearly from 3% of lr to lr over the first 10% of the run.",
    ),
    Variant(
        22, "ConstantLR_warmup", "ConstantLR", ("ConstantLR",), "epoch",
        (_h("factor", 0.75, FACTOR, "warm-up rate as a fraction of lr"),
         _h("total_iters", 0.1, EPOCHS, "epochs of warm-up")),
        _CONSTANT_LR,
        "Hold the rate at 18% of lr for the first 10% of the run, then lr.",
    ),
    Variant(
        23, "MultiplicativeLR_exponential", "MultiplicativeLR",
        ("MultiplicativeLR",), "epoch",
        (_h("factor", 0.5, Linear(0.8, 1.0), "factor applied every epoch"),),
        _MULTIPLICATIVE_LR,
        "Multiply the rate by 0.9 every epoch, through a rate rule.",
        rule="constant_factor", rule_args=("factor",),
    ),
    Variant(
        24, "ChainedScheduler_step_then_cosine", "ChainedScheduler",
        ("ChainedScheduler", "StepLR", "CosineAnnealingLR"), "epoch",
        (_step_size(0.25), _gamma(0.75)), _CHAINED_SCHEDULER,
        "A cosine over the run, times a step decay (x0.32 every quarter).",
    ),
    Variant(
        25, "SequentialLR_warmup_decay", "SequentialLR",
        ("SequentialLR", "LinearLR", "CosineAnnealingLR"), "epoch",
        (_h("warmup", 0.1, EPOCHS, "epochs of linear warm-up"),
         _h("start_factor", 0.5, FACTOR, "starting rate as a fraction of lr"),
         _min_lr(0.0)),
        _SEQUENTIAL_LR,
        "Linear warm-up over 10% of the run, then a cosine down to 0.",
    ),
    _lambda(26, "LambdaLR_linear_decay", "linear_decay", (_min_lr(0.0),),
            ("epochs", "min_lr"), "Fall linearly from lr to 0 over the run."),
    _lambda(27, "LambdaLR_power_decay", "power_decay",
            (_h("power", 0.25, Linear(0, 2), "exponent of the decay"),),
            ("power",), "Inverse square-root decay: lr / sqrt(1 + epoch)."),
    _lambda(28, "LambdaLR_exponential_decay", "exponential_decay",
            (_h("final", 0.5, FACTOR, "rate at the horizon, as a fraction of lr"),),
            ("epochs", "final"),
            "Exponential decay reaching 3% of lr at the end of the run."),
    _lambda(29, "LambdaLR_cosine_like", "cosine_decay", (_min_lr(0.2),),
            ("epochs", "min_lr"),
            "Half a cosine from lr to 10% of lr, then hold."),
    _lambda(30, "LambdaLR_step_like", "step_decay",
            (_step_size(0.3), _gamma(0.85)), ("step_size", "gamma"),
            "Halve the rate every 30% of the run, through a rate rule."),
)  # fmt: skip

BY_NAME: dict[str, Variant] = {v.name: v for v in VARIANTS}
BY_ID: dict[str, Variant] = {v.id: v for v in VARIANTS}


def get(name_or_id: str) -> Variant:
    """The variant with this name or id, or an error naming close matches."""
    found = BY_NAME.get(name_or_id) or BY_ID.get(name_or_id.upper())
    if found is not None:
        return found
    close = close_names(name_or_id)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownVariantError(
        f"unknown variant {name_or_id!r}{hint} ('lrgen list' shows all 30)"
    )


def close_names(text: str) -> list[str]:
    """Up to three catalog names a mistyped `text` may have meant: names that
    contain it, then names spelled alike."""
    folded = text.casefold()
    containing = [n for n in BY_NAME if folded and folded in n.casefold()]
    alike = difflib.get_close_matches(text, list(BY_NAME), n=3, cutoff=0.5)
    return list(dict.fromkeys([*containing, *alike]))[:3]


def select(patterns: list[str] | None) -> list[Variant]:
    """Variants matching any of the names, ids or globs, in catalog order."""
    if not patterns:
        return list(VARIANTS)
    chosen: set[str] = set()
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            hits = [
                v.name
                for v in VARIANTS
                if fnmatch.fnmatchcase(v.name.casefold(), pattern.casefold())
                or fnmatch.fnmatchcase(v.id.casefold(), pattern.casefold())
            ]
            if not hits:
                raise UnknownVariantError(
                    f"no variant matches {pattern!r} ('lrgen list' shows all 30)"
                )
            chosen.update(hits)
        else:
            chosen.add(get(pattern).name)
    return [v for v in VARIANTS if v.name in chosen]


def hp_values(variant: Variant, epoch_max: int) -> dict[str, object]:
    """The `hp.txt` contents of a variant: NNEval's values plus its own keys."""
    if epoch_max < 1:
        raise ValueError(f"epoch_max must be at least 1, got {epoch_max}")
    return {**BASE_DEFAULTS, "epoch_max": epoch_max, **variant.defaults()}

