"""Property tests of every mapping from a stored value in [0, 1] to the
argument torch receives, for every hyperparameter of every catalog variant.

For any x in [0, 1], any horizon of 1..1000 epochs and 1..2000 batches an
epoch:

- the mapping's code text (what the codemod writes into `new_nn.py`, and
  what the committed file holds) evaluates to the catalog's `real()`;
- a Count is a whole number of its unit, in [1, unit]; Linear, Log and Whole
  stay in their [low, high];
- the committed variant's own `build_lr_scheduler`, given those values,
  builds the real torch scheduler, which steps without error and keeps the
  rate finite and non-negative.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lrgen import catalog
from lrgen.catalog import Count, HParam, Variant, Whole
from lrgen.models import load_module, schedule_rates

SYNTH = Path(__file__).parents[1] / "out/nngpt/llm/epoch/A0/synth_nn"

PAIRS = [(v, h) for v in catalog.VARIANTS for h in v.hparams]

# Stored values: the two ends of [0, 1] as often as anything inside it.
unit = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1))
epochs_st = st.integers(1, 1000)
batches_st = st.integers(1, 2000)

MAPPING_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TORCH_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def code_text(h: HParam) -> str:
    """The expression the generated builder assigns to the key's local."""
    return h.mapping.template.replace("{x}", f"prm[{h.key!r}]")


def code_value(h: HParam, x: float, epochs: int, total_steps: int) -> Any:
    """The code text evaluated the way the generated builder runs it."""
    scope = {"prm": {h.key: x}, "epochs": epochs, "total_steps": total_steps}
    return eval(code_text(h), {"__builtins__": {"max": max, "round": round}}, scope)


_modules: dict[str, ModuleType] = {}


def committed_module(variant: Variant) -> ModuleType:
    if variant.id not in _modules:
        _modules[variant.id] = load_module(SYNTH / variant.id / "new_nn.py")
    return _modules[variant.id]


def _pair_id(pair: tuple[Variant, HParam]) -> str:
    return f"{pair[0].id}-{pair[1].key}"


@pytest.mark.parametrize("variant,h", PAIRS, ids=[_pair_id(p) for p in PAIRS])
def test_committed_builder_holds_the_mapping_text(variant: Variant, h: HParam) -> None:
    """What the properties below evaluate is what the committed file runs."""
    code = (SYNTH / variant.id / "new_nn.py").read_text(encoding="utf-8")
    line = re.compile(
        rf"^    {re.escape(h.key)} = {re.escape(code_text(h))}(  #.*)?$", re.MULTILINE
    )
    assert line.search(code), (
        f"{variant.id} {variant.name}: no `{h.key} = {code_text(h)}` in its "
        "build_lr_scheduler"
    )


@pytest.mark.parametrize("variant,h", PAIRS, ids=[_pair_id(p) for p in PAIRS])
@MAPPING_SETTINGS
@given(x=unit, epochs=epochs_st, batches=batches_st)
@example(x=0.0, epochs=1, batches=1)
@example(x=1.0, epochs=1, batches=1)
@example(x=1.0, epochs=1000, batches=2000)
@example(x=0.5, epochs=1, batches=1)
def test_mapping(
    variant: Variant, h: HParam, x: float, epochs: int, batches: int
) -> None:
    total_steps = epochs * batches
    scope = {"epochs": epochs, "total_steps": total_steps}
    real = h.real(x, scope)
    code = code_value(h, x, epochs, total_steps)
    m = h.mapping
    context = f"{variant.id} {h.key}={x!r} ({m}), epochs={epochs}, batches={batches}"

    if isinstance(m, (Count, Whole)):
        # Whole numbers: the code and real() agree exactly.
        assert type(code) is int and type(real) is int, context
        assert code == real, f"{context}: code {code}, real() {real}"
    else:
        # _number() writes a span or ratio rounded to 12 digits (0.2 for
        # 1.0 - 0.8 = 0.19999999999999996), so the two may differ in the
        # last bit; no more.
        assert isinstance(code, (float, int)), context
        assert math.isclose(code, real, rel_tol=1e-12, abs_tol=1e-300), (
            f"{context}: code {code!r}, real() {real!r}"
        )

    if isinstance(m, Count):
        assert 1 <= real <= scope[m.unit], f"{context}: {real} not in [1, {m.unit}]"
    else:
        assert m.low <= real <= m.high, (
            f"{context}: {real!r} not in [{m.low}, {m.high}]"
        )
        assert m.low <= code <= m.high, (
            f"{context}: {code!r} not in [{m.low}, {m.high}]"
        )
    if x == 0.0 and not isinstance(m, Count):
        assert real == m.low, context
    if x == 1.0 and not isinstance(m, Count):
        assert math.isclose(real, m.high, rel_tol=1e-12), context


def _torch_case(variant: Variant) -> Any:
    """Draws: one stored value per key, the horizon and the batches."""
    return st.fixed_dictionaries({h.key: unit for h in variant.hparams})


@pytest.mark.parametrize("variant", catalog.VARIANTS, ids=lambda v: v.id)
@TORCH_SETTINGS
@given(data=st.data(), epochs=epochs_st, batches=batches_st)
def test_torch_accepts_every_mapped_value(
    variant: Variant, data: st.DataObject, epochs: int, batches: int
) -> None:
    """The committed builder, fed the draw, builds the real torch scheduler;
    it steps past the horizon's start (past its end for short horizons)
    with finite, non-negative rates."""
    values = data.draw(_torch_case(variant), label="stored values")
    extreme = data.draw(st.booleans(), label="all at one end")
    if extreme:
        end = data.draw(st.sampled_from([0.0, 1.0]), label="end")
        values = {key: end for key in values}
    hp = json.loads((SYNTH / variant.id / "hp.txt").read_text(encoding="utf-8"))
    prm = {**hp, **values, "epoch_max": epochs}
    module = committed_module(variant)
    if variant.stepping == "batch":
        # A step per batch: one epoch, two when that reaches past the horizon.
        epochs_run, per_epoch = (2 if epochs == 1 else 1), batches
    else:
        # A step per epoch; the batches do not change the schedule.
        epochs_run, per_epoch = min(epochs + 1, 4), 1
    rates = schedule_rates(module, variant.stepping, prm, epochs_run, per_epoch)
    assert len(rates) == epochs_run * per_epoch
    for step, (rate,) in enumerate(rates):
        assert math.isfinite(rate) and rate >= 0, (
            f"{variant.id} {variant.name} {values}, epochs={epochs}, "
            f"batches={batches}: rate {rate!r} at step {step}"
        )
