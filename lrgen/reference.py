"""Each variant's schedule in closed form, from the catalog alone.

`rates` gives the learning rate of every parameter group at every optimizer
step of a run, as the generated code should produce it: per-epoch variants
change the rate between epochs, per-batch ones between batches until their
budget of `epoch_max` times the batches per epoch is spent, after which the
rate holds at the budget's last batch. These are
torch's documented formulas, written out here so that the generated models
can be checked against them without trusting their own code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from .catalog import Variant

Rule = Callable[[int, float], float]
"""The rate after `t` scheduler steps for a group whose base rate is `b`."""


def _cosine(t: float, period: float, base: float, floor: float) -> float:
    return floor + (base - floor) * (1 + math.cos(math.pi * t / period)) / 2


def _anneal(start: float, end: float, pct: float, strategy: str) -> float:
    if strategy == "cos":
        return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))
    return start + (end - start) * pct


def _chained_step_cosine(step_size: int, gamma: float, epochs: int) -> Rule:
    """ChainedScheduler(StepLR, CosineAnnealingLR(T_max=epochs)): both are
    recursive in torch, so the rate past the horizon follows their update
    rules (the cosine restarts from the base rate) rather than a product."""

    def rate(t: int, base: float) -> float:
        lr = base
        for step in range(1, t + 1):
            if step % step_size == 0:
                lr *= gamma
            if (step - 1 - epochs) % (2 * epochs) == 0:
                lr += base * (1 - math.cos(math.pi / epochs)) / 2
            else:
                lr *= (1 + math.cos(math.pi * step / epochs)) / (
                    1 + math.cos(math.pi * (step - 1) / epochs)
                )
        return lr

    return rate


def _warm_restarts(t_0: int, t_mult: int) -> Callable[[int], tuple[int, int]]:
    """Epochs into the current cycle, and that cycle's length."""

    def position(t: int) -> tuple[int, int]:
        length, start = t_0, 0
        while t >= start + length:
            start += length
            length *= t_mult
        return t - start, length

    return position


def _one_cycle(a: Mapping[str, float], total: int, strategy: str) -> Rule:
    pct = a["pct_start"]
    if pct * total == 1:
        pct = 2 / total
    warm_end = pct * total - 1
    last = total - 1

    def rate(n: int, base: float) -> float:
        initial = base / a["div_factor"]
        final = initial / a["final_div_factor"]
        if n <= warm_end:
            return _anneal(initial, base, n / warm_end, strategy)
        return _anneal(base, final, (n - warm_end) / (last - warm_end), strategy)

    return rate


def _cyclic(a: Mapping[str, float], mode: str, total: int) -> Rule:
    half = a["cycle"]
    gamma = a["gamma"] ** (1 / total) if mode == "exp_range" else 1.0
    halving = mode == "triangular2"

    def rate(n: int, base: float) -> float:
        cycle = math.floor(1 + n / (2 * half))
        x = abs(n / half - 2 * cycle + 1)
        low = a["min_lr"] * base
        height = (base - low) * max(0.0, 1 - x)
        if halving:
            height *= 0.5 ** (cycle - 1)
        elif mode == "exp_range":
            height *= gamma**n
        return low + height

    return rate


def rule(
    variant: Variant,
    values: Mapping[str, float],
    epochs: int,
    batches_per_epoch: int,
    bases: Sequence[float],
) -> Rule:
    """The closed form of one variant for stored `values` (hp.txt)."""
    total = epochs * batches_per_epoch
    a = variant.real_args(values, epochs, total)
    floor_of = a.get("min_lr", 0.0) * min(bases)
    family = variant.family
    if family == "StepLR":
        return lambda t, b: b * a["gamma"] ** (t // a["step_size"])
    if family == "MultiStepLR":
        marks = [a[k] for k in variant.keys if k.startswith("milestone_")]
        return lambda t, b: b * a["gamma"] ** sum(m <= t for m in marks)
    if family == "ExponentialLR":
        return lambda t, b: b * a["gamma"] ** t
    if family == "PolynomialLR":
        span = a["total_iters"]
        return lambda t, b: b * (1 - min(t, span) / span) ** a["power"]
    if family == "CosineAnnealingLR":
        return lambda t, b: _cosine(t, a["t_max"], b, floor_of)
    if family == "CosineAnnealingWarmRestarts":
        position = _warm_restarts(int(a["t_0"]), int(a["t_mult"]))
        return lambda t, b: _cosine(*position(t), b, floor_of)
    if family == "CyclicLR":
        mode = variant.fixed.get("mode", "triangular2")  # halving by rule
        return _cyclic(a, mode, total)
    if family == "OneCycleLR":
        return _one_cycle(a, total, variant.fixed["anneal_strategy"])
    if family == "LinearLR":
        span, start = a["total_iters"], a["start_factor"]
        return lambda t, b: b * (start + (1 - start) * min(t, span) / span)
    if family == "ConstantLR":
        return lambda t, b: b * (a["factor"] if t < a["total_iters"] else 1.0)
    if family == "MultiplicativeLR":
        return lambda t, b: b * a["factor"] ** t
    if family == "ChainedScheduler":
        return _chained_step_cosine(int(a["step_size"]), a["gamma"], epochs)
    if family == "SequentialLR":
        warmup, start = a["warmup"], a["start_factor"]
        period = max(1, epochs - warmup)

        def sequential(t: int, b: float) -> float:
            if t < warmup:
                return b * (start + (1 - start) * t / warmup)
            return _cosine(t - warmup, period, b, floor_of)

        return sequential
    if family == "LambdaLR":
        return _lambda_rule(variant.rule or "", a, epochs)
    raise ValueError(f"no closed form for family {family!r}")


def _lambda_rule(name: str, a: Mapping[str, float], epochs: int) -> Rule:
    if name == "linear_decay":
        return lambda t, b: b * (1 - (1 - a["min_lr"]) * min(t, epochs) / epochs)
    if name == "power_decay":
        return lambda t, b: b * (1 + t) ** -a["power"]
    if name == "exponential_decay":
        return lambda t, b: b * a["final"] ** (t / epochs)
    if name == "cosine_decay":
        return lambda t, b: b * _cosine(min(t, epochs), epochs, 1.0, a["min_lr"])
    if name == "step_decay":
        return lambda t, b: b * a["gamma"] ** (t // a["step_size"])
    raise ValueError(f"no closed form for rate rule {name!r}")


def rates(
    variant: Variant,
    values: Mapping[str, float],
    bases: Sequence[float],
    epochs_run: int,
    batches_per_epoch: int,
) -> list[list[float]]:
    """The rate of every group at every optimizer step of `epochs_run`
    epochs, with the horizon `values['epoch_max']`."""
    horizon = max(1, int(values["epoch_max"]))
    closed = rule(variant, values, horizon, batches_per_epoch, bases)
    steps = range(epochs_run * batches_per_epoch)
    if variant.stepping == "batch":
        # learn() steps the scheduler only while the next batch is within the
        # budget, so from the budget's last batch on the rate holds
        last = horizon * batches_per_epoch - 1
        return [[closed(min(n, last), b) for b in bases] for n in steps]
    return [[closed(n // batches_per_epoch, b) for b in bases] for n in steps]
