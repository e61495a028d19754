"""The catalog: one explicit registry, complete and self-consistent."""

from __future__ import annotations

import ast
import inspect

import pytest

from lrgen import catalog
from lrgen.catalog import RULES, VARIANTS, UnknownVariantError

TORCH_FAMILIES = {
    "StepLR", "MultiStepLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "LinearLR",
    "ConstantLR", "MultiplicativeLR", "ChainedScheduler", "SequentialLR", "LambdaLR",
}  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_entry_is_complete(variant: catalog.Variant) -> None:
    assert variant.family in TORCH_FAMILIES
    assert variant.family == variant.classes[0]
    assert variant.stepping == (
        "batch" if variant.family in {"CyclicLR", "OneCycleLR"} else "epoch"
    )
    assert variant.hparams, "every variant declares at least one key"
    assert len(set(variant.keys)) == len(variant.keys)
    assert not set(variant.keys) & {"lr", "momentum", "dropout", "epoch_max"}
    assert all(0.0 <= h.default <= 1.0 for h in variant.hparams)
    for torch_class in variant.classes:
        assert f"lr_scheduler.{torch_class}(" in variant.template
    if variant.rule is not None:
        assert "{rule}" in variant.template or f"={variant.rule}," in variant.template


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_rate_rule_parameters_are_all_bound(variant: catalog.Variant) -> None:
    if variant.rule is None:
        assert "{rule}" not in variant.template
        return
    function = ast.parse(inspect.cleandoc(RULES[variant.rule])).body[0]
    assert isinstance(function, ast.FunctionDef)
    params = [a.arg for a in function.args.args]
    assert params[0] in {"epoch", "cycle"}
    assert tuple(params[1:]) == variant.rule_args


@pytest.mark.parametrize(
    "mapping",
    sorted({h.mapping for v in VARIANTS for h in v.hparams}, key=repr),
    ids=repr,
)
@pytest.mark.parametrize("x", [0.0, 0.25, 0.5, 1.0])
def test_mapping_code_and_number_agree(mapping: catalog.Mapping, x: float) -> None:
    scope = {"epochs": 7, "total_steps": 90}
    code = mapping.template.replace("{x}", repr(x))
    assert eval(code, {}, dict(scope)) == pytest.approx(mapping.real(x, scope))


def test_lookup_by_name_and_id() -> None:
    assert catalog.get("OneCycleLR_default").id == "A0_018"
    assert catalog.get("A0_018").name == "OneCycleLR_default"
    assert catalog.get("a0_018").name == "OneCycleLR_default"


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownVariantError, match="did you mean OneCycleLR_default"):
        catalog.get("OneCycleLR_defualt")
    with pytest.raises(UnknownVariantError, match="unknown variant 'nothing'"):
        catalog.get("nothing")


def test_select_by_glob_keeps_catalog_order() -> None:
    names = [v.name for v in catalog.select(["Cosine*"])]
    assert names == [
        "CosineAnnealingLR_default",
        "CosineAnnealingLR_with_min_lr",
        "CosineAnnealingLR_high_min",
        "CosineAnnealingWarmRestarts_T0_small",
        "CosineAnnealingWarmRestarts_T0_large",
    ]
    with pytest.raises(UnknownVariantError):
        catalog.select(["Nope*"])
