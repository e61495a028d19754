"""Every catalog variant of every model shape in the LEMUR zoo cases: the
generated model passes NNEval's static checks, trains for 3 epochs with
epoch_max=2 in LEMUR's call protocol, and its rate follows the variant's
closed form."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import libcst as cst
import pytest
import torch
from libcst.codemod import CodemodContext

from lrgen import catalog, reference
from lrgen.catalog import Variant
from lrgen.validate import static_problems
from transforms.add_lr_scheduler import AddLrSchedulerCommand

# The shared cases lie beside the project's folder.
SHAPES_DIR = Path(__file__).resolve().parents[2] / "shared" / "cases" / "lemur_shapes"
SHAPES = sorted(p.stem for p in SHAPES_DIR.glob("*.py"))
EPOCH_MAX = 2
EPOCHS = 3
BATCHES = 2
IN_SHAPE = (2, 3, 32, 32)
TOLERANCE = 1e-6
STEP_ORDER = "before `optimizer.step()`"

# Each group's base rate for a shape, from prm['lr'] (one group unless given).
GROUP_RATES: dict[str, Callable[[float], list[float]]] = {
    "param_groups_adamw": lambda lr: [lr * 0.1, lr],
}
REPLACE = {"scheduler_already_present"}
RETURNS = {"list_of_hyperparameters": 2}  # learn returns (accuracy, loss)

pytestmark = pytest.mark.skipif(
    not SHAPES_DIR.is_dir(), reason=f"{SHAPES_DIR} is not on this machine"
)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny batches run fastest on one thread (two contend on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def parsed(shape: str) -> cst.Module:
    """A shape's base model, parsed once as `lrgen generate` does."""
    return cst.parse_module((SHAPES_DIR / f"{shape}.py").read_text(encoding="utf-8"))


def generate(shape: str, variant: Variant) -> str:
    path = SHAPES_DIR / f"{shape}.py"
    command = AddLrSchedulerCommand(
        CodemodContext(filename=str(path)), variant.name, replace=shape in REPLACE
    )
    code = command.transform_module(parsed(shape)).code
    compile(code, f"{variant.id}/new_nn.py", "exec")
    return code


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        (
            torch.rand(IN_SHAPE, generator=generator),
            torch.randint(0, 10, (IN_SHAPE[0],), generator=generator),
        )
        for _ in range(BATCHES)
    ]


def momenta(optimizer: torch.optim.Optimizer) -> list[Any]:
    return [g.get("betas", g.get("momentum")) for g in optimizer.param_groups]


def expected_after_epochs(
    variant: Variant, prm: dict[str, Any], bases: list[float]
) -> list[list[float]]:
    """Each group's rate after epochs 1..EPOCHS: the rate of the first step
    of the next epoch in the closed form."""
    steps = reference.rates(variant, prm, bases, EPOCHS + 1, BATCHES)
    return [steps[epoch * BATCHES] for epoch in range(1, EPOCHS + 1)]


def assert_close(got: list[list[float]], wanted: list[list[float]], what: str) -> None:
    assert len(got) == len(wanted), f"{what}: {len(got)} rates, expected {len(wanted)}"
    for index, (rates, values) in enumerate(zip(got, wanted)):
        assert len(rates) == len(values), f"{what} {index + 1}: group count"
        for group, (rate, value) in enumerate(zip(rates, values)):
            assert math.isclose(rate, value, rel_tol=TOLERANCE, abs_tol=1e-12), (
                f"{what} {index + 1}, group {group}: rate {rate:.9g}, "
                f"closed form {value:.9g}"
            )


@pytest.mark.parametrize("variant", catalog.VARIANTS, ids=lambda v: v.name)
@pytest.mark.parametrize("shape", SHAPES)
def test_shape_variant_trains_on_its_closed_form(
    shape: str,
    variant: Variant,
    tmp_path: Path,
    import_model: Callable[[Path], ModuleType],
) -> None:
    code = generate(shape, variant)
    prm: dict[str, Any] = dict(catalog.hp_values(variant, EPOCH_MAX))
    assert static_problems(code, prm) == []
    assert code.count("scheduler.step()") == 1, "exactly one scheduler steps"
    path = tmp_path / variant.id / "new_nn.py"
    path.parent.mkdir()
    path.write_text(code, encoding="utf-8")
    module = import_model(path)

    # LEMUR's protocol: build, train_setup once, then learn once an epoch
    model = module.Net(IN_SHAPE, (10,), prm, torch.device("cpu"))
    model.train_setup(prm)
    bases = GROUP_RATES.get(shape, lambda lr: [lr])(prm["lr"])
    momentum = momenta(model.optimizer)
    data = batches()
    per_step: list[list[float]] = []
    model.optimizer.register_step_pre_hook(
        lambda opt, *_: per_step.append([g["lr"] for g in opt.param_groups])
    )
    after_epoch = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(EPOCHS):
            model.train()
            returned = model.learn(data)
            after_epoch.append([g["lr"] for g in model.optimizer.param_groups])
            if shape in RETURNS:
                assert isinstance(returned, tuple) and len(returned) == RETURNS[shape]
    assert not [w for w in caught if STEP_ORDER in str(w.message)]
    assert_close(after_epoch, expected_after_epochs(variant, prm, bases), "epoch")
    expected = reference.rates(variant, prm, bases, EPOCHS, BATCHES)
    assert_close(per_step, expected, "optimizer step")
    assert momenta(model.optimizer) == momentum, "the schedule changed the momentum"


PER_BATCH = [v for v in catalog.VARIANTS if v.stepping == "batch"]


@pytest.mark.parametrize("variant", PER_BATCH, ids=lambda v: v.name)
def test_a_skipped_optimizer_step_skips_the_scheduler(
    variant: Variant, tmp_path: Path, import_model: Callable[[Path], ModuleType]
) -> None:
    """batch_tuple_unpacked_in_body skips `optimizer.step()` with `continue`
    on a NaN loss: the per-batch scheduler then does not step either."""
    path = tmp_path / "new_nn.py"
    path.write_text(generate("batch_tuple_unpacked_in_body", variant), encoding="utf-8")
    prm: dict[str, Any] = dict(catalog.hp_values(variant, EPOCH_MAX))
    model = import_model(path).Net(IN_SHAPE, (10,), prm, torch.device("cpu"))
    model.train_setup(prm)
    nan_batch = (torch.full(IN_SHAPE, math.nan), torch.zeros(2, dtype=torch.long))
    data = [*batches(), nan_batch]
    per_step: list[list[float]] = []
    model.optimizer.register_step_pre_hook(
        lambda opt, *_: per_step.append([g["lr"] for g in opt.param_groups])
    )
    for _ in range(EPOCHS):
        model.train()
        model.learn(data)
    assert len(per_step) == EPOCHS * BATCHES
    flat = reference.rates(variant, prm, [prm["lr"]], EPOCHS, len(data))
    assert_close(per_step, flat[: len(per_step)], "optimizer step")
    budget = model.scheduler.total_steps
    assert model.scheduler.last_epoch == min(len(per_step), budget - 1)


# ----------------------------------------------------------------------------
# Several parameter groups and the cosines' floor. torch takes one eta_min for
# every group, so the generated code gives it min_lr times the lowest group's
# rate: each group anneals from its own base rate to that one floor. Below,
# with epoch_max = 6 and min_lr stored as 0.6 (0.3 of the lowest rate), each
# group's rate after t epochs for base rate b and floor f.
# ----------------------------------------------------------------------------

GROUPS_SHAPE = "param_groups_adamw"  # backbone at prm['lr'] * 0.1, head at lr
FLOOR_EPOCH_MAX = 6
FLOOR_EPOCHS = 8


def half_cosine(base: float, floor: float, done: float, period: float) -> float:
    return floor + (base - floor) * (1 + math.cos(math.pi * done / period)) / 2


def one_cosine(t: int, b: float, f: float) -> float:
    """t_max 0.5: 3 epochs down to f, then back up (torch's is periodic)."""
    return half_cosine(b, f, t, 3)


def restarting_cosines(t: int, b: float, f: float) -> float:
    """t_0 0.4: a first cycle of 2 epochs; t_mult 0.5: each next one twice as
    long (2, 4, 8, ...), each starting again at b."""
    start, length = 0, 2
    while t >= start + length:
        start, length = start + length, length * 2
    return half_cosine(b, f, t - start, length)


def warmup_then_cosine(t: int, b: float, f: float) -> float:
    """warmup 0.4: 2 epochs rising linearly from start_factor 0.5, that is
    0.001 * 1000 ** 0.5 of b; then a cosine over the 6 - 2 = 4 epochs left."""
    start = 0.001 * 1000**0.5
    if t < 2:
        return b * (start + (1 - start) * t / 2)
    return half_cosine(b, f, t - 2, 4)


# variant: (stored values, closed form, an epoch at which every group is at f)
SHARED_FLOOR: dict[str, tuple[dict[str, float], Callable[..., float], int | None]] = {
    "CosineAnnealingLR_with_min_lr": ({"t_max": 0.5, "min_lr": 0.6}, one_cosine, 3),
    "CosineAnnealingWarmRestarts_T0_small": (
        {"t_0": 0.4, "t_mult": 0.5, "min_lr": 0.6},
        restarting_cosines,
        None,  # every cycle restarts before its floor
    ),
    "SequentialLR_warmup_decay": (
        {"warmup": 0.4, "start_factor": 0.5, "min_lr": 0.6},
        warmup_then_cosine,
        6,
    ),
}


@pytest.mark.parametrize("name", SHARED_FLOOR)
def test_each_group_anneals_from_its_own_rate_to_the_shared_floor(
    name: str, tmp_path: Path, import_model: Callable[[Path], ModuleType]
) -> None:
    variant = catalog.get(name)
    stored, closed_form, bottom = SHARED_FLOOR[name]
    path = tmp_path / "new_nn.py"
    path.write_text(generate(GROUPS_SHAPE, variant), encoding="utf-8")
    prm: dict[str, Any] = catalog.hp_values(variant, FLOOR_EPOCH_MAX) | stored
    model = import_model(path).Net(IN_SHAPE, (10,), prm, torch.device("cpu"))
    model.train_setup(prm)
    data = batches()
    rates = [[g["lr"] for g in model.optimizer.param_groups]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's step(0) at its milestone
        for _ in range(FLOOR_EPOCHS):
            model.train()
            model.learn(data)
            rates.append([g["lr"] for g in model.optimizer.param_groups])

    lr = prm["lr"]
    bases = [lr * 0.1, lr]
    floor = 0.3 * lr * 0.1
    wanted = [[closed_form(t, b, floor) for b in bases] for t in range(len(rates))]
    assert_close(rates, wanted, "epoch")
    if bottom is not None:
        assert rates[bottom] == pytest.approx([floor, floor], rel=TOLERANCE)
