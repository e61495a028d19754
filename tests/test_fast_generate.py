"""The fast path gives, byte for byte, the whole-module round trip
(`AddLrSchedulerCommand(...).transform_module(base).code`): every variant of
the ResNet18 base and of every shared model shape, bases laid out in other
ways, and the same refusals."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import libcst as cst
import pytest

from lrgen import catalog
from lrgen.catalog import Variant
from lrgen.fast_generate import (
    PreparedBase,
    full_round_trip,
    prepared,
    variant_code,
)
from transforms import scheduler_code
from transforms.model_shape import ModelRefused

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESNET18 = PROJECT_ROOT / "base_model" / "resnet18.py"
SHAPES_DIR = PROJECT_ROOT.parent / "shared" / "cases" / "lemur_shapes"
BASES = [RESNET18, *sorted(SHAPES_DIR.glob("*.py"))]
REPLACE = {"scheduler_already_present"}
# one variant of each kind: per epoch, per batch, a rate rule, one needing math
KINDS = [
    catalog.get(name)
    for name in (
        "StepLR_default",
        "CyclicLR_triangular",
        "OneCycleLR_default",
        "LambdaLR_linear_decay",
        "LambdaLR_cosine_like",
        "SequentialLR_warmup_decay",
    )
]


@functools.cache
def base_of(path: Path) -> PreparedBase:
    text = path.read_text(encoding="utf-8")
    return PreparedBase(cst.parse_module(text), path, replace=path.stem in REPLACE)


def outcome(make: functools.partial[str]) -> str:
    """The code, or the refusal as text."""
    try:
        return make()
    except ModelRefused as refusal:
        return f"refused: {refusal}"


@pytest.mark.parametrize("variant", catalog.VARIANTS, ids=lambda v: v.id)
@pytest.mark.parametrize("path", BASES, ids=lambda p: p.stem)
def test_every_variant_of_every_base_equals_the_round_trip(
    path: Path, variant: Variant
) -> None:
    prepared_base = base_of(path)
    assert prepared_base.fast, f"{path.name} took the whole round trip"
    want = full_round_trip(prepared_base.base, variant, path, prepared_base.replace)
    assert prepared_base.code(variant) == want


def test_the_shared_shapes_are_all_there() -> None:
    if not SHAPES_DIR.is_dir():
        pytest.skip(f"{SHAPES_DIR} is not on this machine")
    assert len(BASES) == 9


def test_net_is_edited_once_per_kind_of_variant() -> None:
    prepared_base = PreparedBase(cst.parse_module(RESNET18.read_text()), RESNET18)
    for variant in catalog.VARIANTS:
        prepared_base.code(variant)
    assert len(prepared_base._nets) == 2  # per epoch and per batch
    assert len(prepared_base._heads) == 3  # lr_scheduler; + partial; + math
    assert len(prepared_base._hps) == 17  # sets of keys: 4 variants share one


def test_templates_are_parsed_once_per_variant_and_quote() -> None:
    variant = catalog.get("LambdaLR_cosine_like")
    first = scheduler_code.module_functions(variant, '"')
    again = scheduler_code.module_functions(variant, '"')
    assert first == again and first is not again  # a fresh list of shared nodes
    assert all(a is b for a, b in zip(first, again))


def test_a_variant_is_parsed_once_whatever_the_quote() -> None:
    variant = catalog.get("CyclicLR_exp_range")
    parses = scheduler_code._builder.cache_info().misses
    single = scheduler_code.module_functions(variant, "'")[-1]
    double = scheduler_code.module_functions(variant, '"')[-1]
    assert scheduler_code._builder.cache_info().misses - parses <= 1
    code = cst.Module([]).code_for_node
    assert "'exp_range'" in code(single)
    assert code(double) == code(single).replace("'", '"')


def test_a_placeholder_missing_from_a_template_is_an_error() -> None:
    variant = dataclasses.replace(
        catalog.get("StepLR_default"), fixed={"mode": "triangular"}
    )
    with pytest.raises(ValueError, match="the template has no {mode}"):
        scheduler_code.builder_source(variant)


def test_a_parsed_base_is_prepared_once() -> None:
    base = cst.parse_module(RESNET18.read_text())
    variant = catalog.get("StepLR_default")
    assert variant_code(base, variant, RESNET18) == full_round_trip(
        base, variant, RESNET18
    )
    assert prepared(base, RESNET18) is prepared(base, RESNET18)
    assert prepared(base, RESNET18, replace=True) is not prepared(base, RESNET18)


RESNET18_TEXT = RESNET18.read_text(encoding="utf-8")

# (id, base text, whether it splices without and with `replace`): bases the
# fast path must reproduce, refusals included
LAYOUTS = [
    ("crlf", RESNET18_TEXT.replace("\n", "\r\n"), (True, True)),
    ("tabs", RESNET18_TEXT.replace("    ", "\t"), (True, True)),
    ("no-final-newline", RESNET18_TEXT.rstrip("\n"), (True, True)),
    ("trailing-comments", RESNET18_TEXT + "\n# end of the model\n\n", (True, True)),
    (
        "comment-ending-net",
        RESNET18_TEXT + "        # the batch loop ends here\n",
        (True, True),
    ),
    ("no-final-newline-after-comment", RESNET18_TEXT + "# end", (True, True)),
    (
        "decorated-net",
        RESNET18_TEXT.replace(
            "class Net(nn.Module):",
            "# the model\n@functools.total_ordering  # odd, but valid\n"
            "class Net(  # base\n    nn.Module,\n):  # its body\n",
        ).replace("import torch\n", "import functools\nimport torch\n"),
        (True, True),
    ),
    (
        "header-comments-no-docstring",
        "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n\n"
        + RESNET18_TEXT.split('"""\n', 1)[1],
        (True, True),
    ),
    (
        "from-future-and-no-imports-before-a-constant",
        "from __future__ import annotations\nSCALE = 1\n"
        + RESNET18_TEXT.split('"""\n', 1)[1],
        (True, True),
    ),
    (
        "no-leading-imports",
        "def supported_hyperparameters():\n    return {'lr', 'momentum'}\n\n\n"
        + RESNET18_TEXT.replace(
            "def supported_hyperparameters():\n    return {'lr', 'momentum', "
            "'dropout'}\n",
            "",
        ),
        (True, True),
    ),
    (
        "lr_scheduler-already-imported",
        RESNET18_TEXT.replace(
            "import torch.nn as nn\n",
            "import torch.nn as nn\nfrom torch.optim import lr_scheduler\n",
        ),
        (False, True),  # refused unless replace: it imports lr_scheduler
    ),
    (
        "name-taken",
        RESNET18_TEXT + "\n\ndef lr_schedule_epochs(prm):\n    return 1\n",
        (True, True),  # refused per variant, with the codemod's message
    ),
    ("no-net", RESNET18_TEXT.replace("class Net(", "class Model("), (False, False)),
    (
        "key-declared",
        RESNET18_TEXT.replace("'dropout'}", "'dropout', 'gamma'}"),
        (True, True),  # StepLR_default is refused, most others are not
    ),
]


@pytest.mark.parametrize("replace", [False, True], ids=["add", "replace"])
@pytest.mark.parametrize("variant", KINDS, ids=lambda v: v.name)
@pytest.mark.parametrize(
    ("text", "splices"),
    [pytest.param(text, splices, id=name) for name, text, splices in LAYOUTS],
)
def test_other_layouts_and_refusals_equal_the_round_trip(
    text: str, splices: tuple[bool, bool], variant: Variant, replace: bool
) -> None:
    base = cst.parse_module(text)
    prepared_base = PreparedBase(base, "model.py", replace)
    assert prepared_base.fast is splices[replace]
    fast = outcome(functools.partial(prepared_base.code, variant))
    slow = outcome(
        functools.partial(full_round_trip, base, variant, "model.py", replace)
    )
    assert fast == slow
