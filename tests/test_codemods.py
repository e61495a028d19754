"""The codemods as specifications: a model before, the model after, and the
exact reason a model is left unchanged."""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from pathlib import Path
from textwrap import dedent, indent

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from libcst.codemod import CodemodContext, CodemodTest
from libcst.testing.utils import data_provider

from lrgen import catalog
from transforms.add_lr_scheduler import AddLrSchedulerCommand
from transforms.build_lr_scheduler import BuildLrSchedulerCommand
from transforms.declare_hyperparameters import DeclareHyperparametersCommand
from transforms.model_shape import ModelRefused
from transforms.remove_lr_scheduler import RemoveLrSchedulerCommand
from transforms.step_lr_scheduler import StepLrSchedulerCommand

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VARIANT_NAMES = [v.name for v in catalog.VARIANTS]

# Refusal messages several rows share.
NOT_A_LITERAL_RETURN = (
    "supported_hyperparameters() must start with `return` of a literal set or "
    "list of strings"
)
HAS_SCHEDULER = "the model already has a scheduler: "
LRGEN_RAN = HAS_SCHEDULER + (
    "it already defines build_lr_scheduler() (was lrgen run on it?)"
)
REPLACE_HINT = "; pass --replace to put the variant's scheduler in its place"
USES_LR_SCHEDULER = (
    HAS_SCHEDULER + "it already uses torch.optim.lr_scheduler" + REPLACE_HINT
)

# ----------------------------------------------------------------------------
# Models. MODEL is written out in full; `lemur()` builds the same model with one
# part swapped, so that a table row shows only the part it is about.
# ----------------------------------------------------------------------------

MODEL = """
import torch
import torch.nn as nn


def supported_hyperparameters():
    return {'lr'}


class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        self.device = device
        self.fc = nn.Linear(in_shape[1], out_shape[0])

    def forward(self, x):
        return self.fc(x)

    def train_setup(self, prm):
        self.criteria = (nn.CrossEntropyLoss(),)
        self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'])

    def learn(self, train_data):
        for inputs, labels in train_data:
            self.optimizer.zero_grad()
            loss = self.criteria[0](self(inputs), labels)
            loss.backward()
            self.optimizer.step()
""".lstrip("\n")

SETUP = """
self.criteria = (nn.CrossEntropyLoss(),)
self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'])
"""

LEARN = """
for inputs, labels in train_data:
    self.optimizer.zero_grad()
    loss = self.criteria[0](self(inputs), labels)
    loss.backward()
    self.optimizer.step()
"""


MODEL_IMPORTS = "import torch\nimport torch.nn as nn\n"


def _block(text: str, spaces: int) -> str:
    return indent(dedent(text).strip("\n"), " " * spaces)


def lemur(
    *,
    header: str = MODEL_IMPORTS,
    declare: str | None = "return {'lr'}",
    class_name: str = "Net",
    train_setup: str | None = SETUP,
    helpers: str | None = None,
    learn: str | None = LEARN,
) -> str:
    """A complete small LEMUR model. Bodies are written at column 0; None
    leaves that function out. `helpers` are whole methods of Net, placed
    between train_setup and learn."""
    parts = [header.strip("\n")]
    if declare is not None:
        parts.append("def supported_hyperparameters():\n" + _block(declare, 4))
    methods = [
        (
            "def __init__(self, in_shape, out_shape, prm, device):\n"
            "    super().__init__()\n"
            "    self.device = device\n"
            "    self.fc = nn.Linear(in_shape[1], out_shape[0])"
        ),
        "def forward(self, x):\n    return self.fc(x)",
    ]
    if train_setup is not None:
        methods.append("def train_setup(self, prm):\n" + _block(train_setup, 4))
    if helpers is not None:
        methods.append(dedent(helpers).strip("\n"))
    if learn is not None:
        methods.append("def learn(self, train_data):\n" + _block(learn, 4))
    parts.append(
        f"class {class_name}(nn.Module):\n"
        + "\n\n".join(_block(method, 4) for method in methods)
    )
    return "\n\n\n".join(parts) + "\n"


@functools.cache
def add_scheduler(source: str, variant: str, replace: bool = False) -> str:
    """AddLrSchedulerCommand's output, computed once per model and variant."""
    command = AddLrSchedulerCommand(CodemodContext(), variant, replace=replace)
    return command.transform_module(cst.parse_module(source)).code


class RefusalCodemodTest(CodemodTest):
    """CodemodTest plus the exact reason a refused model is left unchanged."""

    def assertRefused(self, before: str, message: str, **kwargs: object) -> None:
        self.assertCodemod(before, before, expected_skip=True, **kwargs)
        command = self.TRANSFORM(CodemodContext(), **kwargs)
        with self.assertRaisesRegex(ModelRefused, f"^{re.escape(message)}$"):
            command.transform_module(cst.parse_module(dedent(before)))


def test_lemur_default_is_model() -> None:
    assert lemur() == MODEL


# ----------------------------------------------------------------------------
# DeclareHyperparametersCommand
# ----------------------------------------------------------------------------


class DeclareHyperparametersTest(RefusalCodemodTest):
    TRANSFORM = DeclareHyperparametersCommand

    def test_set_gains_keys_in_single_quotes(self) -> None:
        before = """
            def supported_hyperparameters():
                return {'lr', 'momentum'}
        """
        after = """
            def supported_hyperparameters():
                return {'lr', 'momentum', 'step_size', 'gamma'}
        """
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_set_gains_keys_in_double_quotes(self) -> None:
        before = """
            def supported_hyperparameters():
                return {"lr", "momentum"}
        """
        after = """
            def supported_hyperparameters():
                return {"lr", "momentum", "step_size", "gamma"}
        """
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_list_gains_keys(self) -> None:
        before = """
            def supported_hyperparameters():
                return ['lr', 'momentum']
        """
        after = """
            def supported_hyperparameters():
                return ['lr', 'momentum', 't_max', 'min_lr']
        """
        self.assertCodemod(before, after, variant="CosineAnnealingLR_default")

    def test_empty_list_gains_keys(self) -> None:
        before = """
            def supported_hyperparameters():
                return []
        """
        after = """
            def supported_hyperparameters():
                return ['step_size', 'gamma']
        """
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_trailing_comma_is_kept_at_the_end(self) -> None:
        before = """
            def supported_hyperparameters():
                return {'lr', 'momentum',}
        """
        after = """
            def supported_hyperparameters():
                return {'lr', 'momentum', 'step_size', 'gamma',}
        """
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_set_that_fits_in_88_columns_stays_on_one_line(self) -> None:
        before = """
            def supported_hyperparameters():
                return {'lr', 'momentum', 'dropout', 'weight_decay', 'stride'}
        """
        line = (
            "    return {'lr', 'momentum', 'dropout', 'weight_decay', 'stride', "
            "'step_size', 'gamma'}"
        )
        self.assertEqual(len(line), 88)
        after = "def supported_hyperparameters():\n" + line
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_set_one_column_too_long_is_laid_out_one_key_per_line(self) -> None:
        before = """
            def supported_hyperparameters():
                return {'lr', 'momentum', 'dropout', 'weight_decay', 'strides'}
        """
        after = """
            def supported_hyperparameters():
                return {
                    'lr',
                    'momentum',
                    'dropout',
                    'weight_decay',
                    'strides',
                    'step_size',
                    'gamma',
                }
        """
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_long_list_is_laid_out_one_key_per_line(self) -> None:
        before = """
            def supported_hyperparameters():
                return ['lr', 'momentum', 'dropout']
        """
        after = """
            def supported_hyperparameters():
                return [
                    'lr',
                    'momentum',
                    'dropout',
                    'milestone_1',
                    'milestone_2',
                    'milestone_3',
                    'milestone_4',
                    'gamma',
                ]
        """
        self.assertCodemod(before, after, variant="MultiStepLR_four_milestones")

    def test_docstring_becomes_a_comment_after_the_return(self) -> None:
        before = '''
            def supported_hyperparameters():
                """Keys NNEval may set."""
                return {'lr', 'momentum'}


            class Net:
                pass
        '''
        after = """
            def supported_hyperparameters():
                return {'lr', 'momentum', 'step_size', 'gamma'}
                # Keys NNEval may set.


            class Net:
                pass
        """
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_docstring_comment_goes_before_code_after_the_return(self) -> None:
        before = '''
            def supported_hyperparameters():
                """Keys."""
                return {'lr'}
                print('unreachable')
        '''
        after = """
            def supported_hyperparameters():
                return {'lr', 'step_size', 'gamma'}
                # Keys.
                print('unreachable')
        """
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_multi_line_set_gains_one_key_per_line(self) -> None:
        before = """
            def supported_hyperparameters():
                return {
                    'lr',
                    'momentum',
                }
        """
        after = """
            def supported_hyperparameters():
                return {
                    'lr',
                    'momentum',
                    'step_size',
                    'gamma',
                }
        """
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_multi_line_docstring_becomes_a_dedented_comment(self) -> None:
        before = '''
            def supported_hyperparameters():
                """Keys NNEval may set.

                The scheduler keys come last.
                """
                return {'lr'}
        '''
        after = """
            def supported_hyperparameters():
                return {'lr', 'step_size', 'gamma'}
                # Keys NNEval may set.
                #
                # The scheduler keys come last.
        """
        self.assertCodemod(before, after, variant="StepLR_default")

    @data_provider(
        {
            "computed_return": (
                "keys = {'lr'}\nreturn keys",
                NOT_A_LITERAL_RETURN,
            ),
            "return_of_set_call": (
                "return set()",
                NOT_A_LITERAL_RETURN,
            ),
            "empty_braces_are_a_dict": (
                "return {}",
                NOT_A_LITERAL_RETURN,
            ),
            "non_string_element": (
                "return {'lr', KEY}",
                "supported_hyperparameters() returns a non-string element",
            ),
            "key_already_declared": (
                "return {'lr', 'gamma'}",
                "supported_hyperparameters() already declares gamma",
            ),
        }
    )
    def test_refuses(self, declare: str, message: str) -> None:
        self.assertRefused(lemur(declare=declare), message, variant="StepLR_default")

    def test_refuses_model_without_supported_hyperparameters(self) -> None:
        self.assertRefused(
            lemur(declare=None),
            "no module-level supported_hyperparameters() function",
            variant="StepLR_default",
        )


@settings(max_examples=40, deadline=None)
@given(
    keys=st.lists(
        st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True),
        unique=True,
        max_size=12,
    ).filter(lambda keys: not set(keys) & {"step_size", "gamma"}),
    quote=st.sampled_from(["'", '"']),
    brackets=st.sampled_from(["{}", "[]"]),
)
def test_declared_keys_are_the_old_then_the_new(
    keys: list[str], quote: str, brackets: str
) -> None:
    if brackets == "{}" and not keys:
        keys = ["lr"]  # `{}` would be a dict
    literal = brackets[0] + ", ".join(f"{quote}{k}{quote}" for k in keys) + brackets[1]
    source = f"def supported_hyperparameters():\n    return {literal}\n"
    command = DeclareHyperparametersCommand(CodemodContext(), "StepLR_default")
    code = command.transform_module(cst.parse_module(source)).code
    returned = ast.parse(code).body[0].body[0]  # type: ignore[attr-defined]
    assert isinstance(returned, ast.Return)
    assert ast.literal_eval(returned.value) == (
        {*keys, "step_size", "gamma"}
        if brackets == "{}"
        else [*keys, "step_size", "gamma"]
    )
    assert max(len(line) for line in code.splitlines()) <= 88
    if keys:  # an empty literal has no quote to follow: ' then
        assert f"{quote}gamma{quote}" in code


# ----------------------------------------------------------------------------
# BuildLrSchedulerCommand
# ----------------------------------------------------------------------------

MODEL_WITH_STEP_LR_BUILT = '''
import torch
import torch.nn as nn
from torch.optim import lr_scheduler


def supported_hyperparameters():
    return {'lr'}


class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        self.device = device
        self.fc = nn.Linear(in_shape[1], out_shape[0])

    def forward(self, x):
        return self.fc(x)

    def train_setup(self, prm):
        self.criteria = (nn.CrossEntropyLoss(),)
        self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'])
        self.scheduler = build_lr_scheduler(self.optimizer, prm)

    def learn(self, train_data):
        for inputs, labels in train_data:
            self.optimizer.zero_grad()
            loss = self.criteria[0](self(inputs), labels)
            loss.backward()
            self.optimizer.step()


def lr_schedule_epochs(prm):
    """Epochs the schedule spans: prm['epoch_max'], else prm['epoch']."""
    for key in ('epoch_max', 'epoch'):
        if prm.get(key) is not None:
            return max(1, int(prm[key]))
    raise KeyError(
        "prm has neither 'epoch_max' nor 'epoch': set the epochs to schedule over"
    )


def build_lr_scheduler(optimizer, prm):
    """The StepLR_default schedule, stepped once per epoch."""
    epochs = lr_schedule_epochs(prm)
    step_size = max(1, round(prm['step_size'] * epochs))  # 1 .. epoch_max
    gamma = 0.01 * 100 ** prm['gamma']  # 0.01 .. 1 (log)
    return lr_scheduler.StepLR(
        optimizer,
        step_size=step_size,
        gamma=gamma,
    )
'''

MODEL_WITH_ONE_CYCLE_LR_BOUND = '''
import torch
import torch.nn as nn
from functools import partial
from torch.optim import lr_scheduler


def supported_hyperparameters():
    return {'lr'}


class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        self.device = device
        self.fc = nn.Linear(in_shape[1], out_shape[0])

    def forward(self, x):
        return self.fc(x)

    def train_setup(self, prm):
        self.criteria = (nn.CrossEntropyLoss(),)
        self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'])
        self.scheduler = None
        self.build_scheduler = partial(build_lr_scheduler, self.optimizer, prm)

    def learn(self, train_data):
        for inputs, labels in train_data:
            self.optimizer.zero_grad()
            loss = self.criteria[0](self(inputs), labels)
            loss.backward()
            self.optimizer.step()


def lr_schedule_epochs(prm):
    """Epochs the schedule spans: prm['epoch_max'], else prm['epoch']."""
    for key in ('epoch_max', 'epoch'):
        if prm.get(key) is not None:
            return max(1, int(prm[key]))
    raise KeyError(
        "prm has neither 'epoch_max' nor 'epoch': set the epochs to schedule over"
    )


def build_lr_scheduler(optimizer, prm, batches_per_epoch):
    """The OneCycleLR_default schedule, stepped every batch."""
    epochs = lr_schedule_epochs(prm)
    total_steps = epochs * batches_per_epoch
    pct_start = 0.1 + 0.4 * prm['pct_start']  # 0.1 .. 0.5
    div_factor = 5 * 25 ** prm['div_factor']  # 5 .. 125 (log)
    final_div_factor = 10 * 10000 ** prm['final_div_factor']  # 10 .. 100000 (log)
    if pct_start * total_steps == 1:
        # torch divides by zero when the warm-up is exactly one batch long
        pct_start = 2 / total_steps
    scheduler = lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group['lr'] for group in optimizer.param_groups],
        total_steps=total_steps,
        pct_start=pct_start,
        anneal_strategy='cos',
        cycle_momentum=False,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
    scheduler.total_steps = total_steps  # learn() holds the rate after these batches
    return scheduler
'''


def build(source: str, variant: str) -> str:
    command = BuildLrSchedulerCommand(CodemodContext(), variant)
    return command.transform_module(cst.parse_module(source)).code


def count_lines(code: str, line: str) -> int:
    return sum(1 for text in code.splitlines() if text == line)


class BuildLrSchedulerTest(RefusalCodemodTest):
    TRANSFORM = BuildLrSchedulerCommand

    def test_per_epoch_variant_is_built_after_the_optimizer(self) -> None:
        self.assertCodemod(MODEL, MODEL_WITH_STEP_LR_BUILT, variant="StepLR_default")

    def test_per_batch_variant_is_bound_after_the_optimizer(self) -> None:
        self.assertCodemod(
            MODEL, MODEL_WITH_ONE_CYCLE_LR_BOUND, variant="OneCycleLR_default"
        )

    def test_built_right_after_an_optimizer_call_on_several_lines(self) -> None:
        before = lemur(
            train_setup="""
                self.optimizer = torch.optim.SGD(
                    self.parameters(), lr=prm['lr'], momentum=prm['momentum']
                )
                self.criteria = (nn.CrossEntropyLoss(),)
            """
        )
        expected = """
    def train_setup(self, prm):
        self.optimizer = torch.optim.SGD(
            self.parameters(), lr=prm['lr'], momentum=prm['momentum']
        )
        self.scheduler = build_lr_scheduler(self.optimizer, prm)
        self.criteria = (nn.CrossEntropyLoss(),)
"""
        self.assertIn(expected, build(before, "StepLR_default"))

    def test_built_after_the_last_optimizer_assignment(self) -> None:
        before = lemur(
            train_setup="""
                self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'])
                self.optimizer = torch.optim.Adam(self.parameters(), lr=prm['lr'])
            """
        )
        expected = """
        self.optimizer = torch.optim.Adam(self.parameters(), lr=prm['lr'])
        self.scheduler = build_lr_scheduler(self.optimizer, prm)
"""
        self.assertIn(expected, build(before, "StepLR_default"))

    def test_uses_the_methods_own_parameter_names(self) -> None:
        before = lemur(
            train_setup="net.optimizer = torch.optim.SGD(net.parameters(), lr=hp['lr'])"
        ).replace("def train_setup(self, prm):", "def train_setup(net, hp):")
        expected = """
    def train_setup(net, hp):
        net.optimizer = torch.optim.SGD(net.parameters(), lr=hp['lr'])
        net.scheduler = None
        net.build_scheduler = partial(build_lr_scheduler, net.optimizer, hp)
"""
        self.assertIn(expected, build(before, "CyclicLR_triangular"))

    def test_lambda_variant_appends_its_rate_rule_before_the_builder(self) -> None:
        code = build(MODEL, "LambdaLR_cosine_like")
        rule = '''
def cosine_decay(epoch, epochs, min_lr):
    """Half a cosine from 1 down to `min_lr` over `epochs`, then hold."""
    progress = min(epoch, epochs) / epochs
    return min_lr + (1 - min_lr) * (1 + math.cos(math.pi * progress)) / 2
'''
        self.assertIn(rule, code)
        self.assertLess(code.index("def lr_schedule_epochs("), code.index(rule))
        self.assertLess(code.index(rule), code.index("def build_lr_scheduler("))
        self.assertIn(
            "lr_lambda=partial(cosine_decay, epochs=epochs, min_lr=min_lr),", code
        )
        self.assertIn("self.scheduler = build_lr_scheduler(self.optimizer, prm)", code)

    def test_lambda_variant_imports_what_its_rule_needs(self) -> None:
        code = build(MODEL, "LambdaLR_cosine_like")
        header = code.split("\n\n\n")[0].splitlines()
        self.assertCountEqual(
            header,
            [
                "import torch",
                "import torch.nn as nn",
                "import math",
                "from functools import partial",
                "from torch.optim import lr_scheduler",
            ],
        )

    def test_imports_already_present_are_not_added_again(self) -> None:
        header = """
            import math
            from functools import partial

            import torch
            import torch.nn as nn
        """
        code = build(lemur(header=dedent(header)), "LambdaLR_cosine_like")
        for line in ["import math", "from functools import partial"]:
            self.assertEqual(count_lines(code, line), 1, line)
        self.assertEqual(count_lines(code, "from torch.optim import lr_scheduler"), 1)

    def test_generated_code_follows_a_double_quoted_model(self) -> None:
        code = build(lemur(declare='return {"lr"}'), "CosineAnnealingLR_default")
        self.assertIn('    t_max = max(1, round(prm["t_max"] * epochs))', code)
        self.assertIn('    min_lr = 0.5 * prm["min_lr"]', code)
        self.assertIn('    for key in ("epoch_max", "epoch"):', code)
        self.assertIn('min(group["lr"] for group in optimizer.param_groups)', code)

    @data_provider(
        {
            "cosine": ("CosineAnnealingLR_with_min_lr", "eta_min=min_lr * lowest_lr,"),
            "restarts": (
                "CosineAnnealingWarmRestarts_T0_small",
                "eta_min=min_lr * lowest_lr,",
            ),
            "sequential": (
                "SequentialLR_warmup_decay",
                "optimizer, T_max=max(1, epochs - warmup), eta_min=min_lr * lowest_lr",
            ),
        }
    )
    def test_cosine_floor_is_one_rate_for_all_groups(
        self, variant: str, eta_min: str
    ) -> None:
        # torch's eta_min is a float: the floor is min_lr of the lowest rate
        floor = """
    # eta_min is one rate for all groups: min_lr of the lowest group's rate
    lowest_lr = min(group['lr'] for group in optimizer.param_groups)
"""
        code = build(MODEL, variant)
        self.assertEqual(code.count(floor), 1)
        self.assertEqual(sum(line.strip() == eta_min for line in code.splitlines()), 1)

    @data_provider(
        {
            "no_class_net": (
                lemur(class_name="Model"),
                "no top-level class Net; a LEMUR model defines "
                "`class Net(nn.Module)`",
            ),
            "no_train_setup": (
                lemur(train_setup=None),
                "class Net has no train_setup() method; a LEMUR model defines "
                "train_setup(self, prm) and learn(self, train_data)",
            ),
            "optimizer_never_assigned": (
                lemur(train_setup="self.criteria = (nn.CrossEntropyLoss(),)"),
                "Net.train_setup() never assigns self.optimizer; "
                "create the optimizer there as `self.optimizer = ...`",
            ),
            "optimizer_assigned_inside_an_if": (
                lemur(
                    train_setup="""
                        if prm.get('adam'):
                            self.optimizer = torch.optim.Adam(self.parameters())
                        else:
                            self.optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
                    """
                ),
                (
                    "Net.train_setup() assigns self.optimizer inside a block; "
                    "assign it once, at the top level of the method"
                ),
            ),
            "uses_torch_optim_lr_scheduler": (
                lemur(
                    train_setup=SETUP
                    + "self.decay = torch.optim.lr_scheduler.StepLR(self.optimizer, 9)"
                ),
                USES_LR_SCHEDULER,
            ),
            "imports_lr_scheduler": (
                lemur(header=MODEL_IMPORTS + "from torch.optim import lr_scheduler"),
                USES_LR_SCHEDULER,
            ),
            "assigns_self_scheduler": (
                lemur(train_setup=SETUP + "self.scheduler = None"),
                HAS_SCHEDULER
                + "it already assigns a .scheduler attribute"
                + REPLACE_HINT,
            ),
        }
    )
    def test_refuses(self, before: str, message: str) -> None:
        self.assertRefused(before, message, variant="StepLR_default")

    def test_refuses_its_own_output(self) -> None:
        self.assertRefused(
            MODEL_WITH_STEP_LR_BUILT,
            LRGEN_RAN,
            variant="OneCycleLR_default",
        )

    def test_refuses_optimizer_replaced_inside_a_block(self) -> None:
        before = lemur(
            train_setup="""
                self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'])
                if prm.get('adam'):
                    self.optimizer = torch.optim.Adam(self.parameters())
            """
        )
        self.assertCodemod(before, before, expected_skip=True, variant="StepLR_default")

    def test_refuses_model_defining_a_helper_name(self) -> None:
        before = lemur() + "\n\ndef step_decay(epoch):\n    return 0.5 ** epoch\n"
        self.assertCodemod(
            before, before, expected_skip=True, variant="LambdaLR_step_like"
        )

    def test_refuses_model_defining_a_name_the_code_imports(self) -> None:
        before = lemur() + "\n\ndef partial(function, *args):\n    return function\n"
        self.assertRefused(
            before,
            "the model already defines partial, a name the scheduler code needs; "
            "rename it in the model",
            variant="OneCycleLR_default",
        )


# ----------------------------------------------------------------------------
# StepLrSchedulerCommand
# ----------------------------------------------------------------------------


# A helper that steps the optimizer, under its own name for `self`, and a
# learn() that calls it once a batch and returns a value.
UPDATE_HELPER = """
def _update(net, inputs, labels):
    net.optimizer.zero_grad()
    loss = net.criteria[0](net(inputs), labels)
    loss.backward()
    net.optimizer.step()
    return loss
"""

LEARN_CALLING_HELPER = """
total = 0.0
for inputs, labels in train_data:
    total += self._update(inputs, labels).item()
return total
"""


class StepLrSchedulerTest(RefusalCodemodTest):
    TRANSFORM = StepLrSchedulerCommand

    def test_per_epoch_step_goes_after_the_batch_loop(self) -> None:
        after = lemur(
            learn="""
                for inputs, labels in train_data:
                    self.optimizer.zero_grad()
                    loss = self.criteria[0](self(inputs), labels)
                    loss.backward()
                    self.optimizer.step()
                self.scheduler.step()
            """
        )
        self.assertCodemod(MODEL, after, variant="StepLR_default")

    def test_per_epoch_step_goes_before_a_return_after_the_loop(self) -> None:
        before = lemur(
            learn="""
                self.train()
                for inputs, labels in train_data:
                    self.optimizer.zero_grad()
                    loss = self.criteria[0](self(inputs), labels)
                    loss.backward()
                    self.optimizer.step()
                return 0.0, loss.item()
            """
        )
        after = lemur(
            learn="""
                self.train()
                for inputs, labels in train_data:
                    self.optimizer.zero_grad()
                    loss = self.criteria[0](self(inputs), labels)
                    loss.backward()
                    self.optimizer.step()
                self.scheduler.step()
                return 0.0, loss.item()
            """
        )
        self.assertCodemod(before, after, variant="CosineAnnealingLR_default")

    def test_per_batch_step_follows_the_optimizer_inside_an_if(self) -> None:
        before = lemur(
            learn="""
                self.train()
                for inputs, labels in train_data:
                    self.optimizer.zero_grad()
                    loss = self.criteria[0](self(inputs), labels)
                    loss.backward()
                    if loss.isfinite():
                        self.optimizer.step()
                    total = loss.item()
            """
        )
        after = lemur(
            learn="""
                self.train()
                if self.scheduler is None:
                    self.scheduler = self.build_scheduler(len(train_data))
                for inputs, labels in train_data:
                    self.optimizer.zero_grad()
                    loss = self.criteria[0](self(inputs), labels)
                    loss.backward()
                    if loss.isfinite():
                        self.optimizer.step()
                        if self.scheduler.last_epoch + 1 < self.scheduler.total_steps:
                            self.scheduler.step()
                    total = loss.item()
            """
        )
        self.assertCodemod(before, after, variant="CyclicLR_triangular")

    @data_provider(
        {"one_cycle": ("OneCycleLR_default",), "cyclic": ("CyclicLR_triangular",)}
    )
    def test_per_batch_holds_its_last_rate_past_its_budget(self, variant: str) -> None:
        after = lemur(
            learn="""
                if self.scheduler is None:
                    self.scheduler = self.build_scheduler(len(train_data))
                for inputs, labels in train_data:
                    self.optimizer.zero_grad()
                    loss = self.criteria[0](self(inputs), labels)
                    loss.backward()
                    self.optimizer.step()
                    if self.scheduler.last_epoch + 1 < self.scheduler.total_steps:
                        self.scheduler.step()
            """
        )
        self.assertCodemod(MODEL, after, variant=variant)

    def test_per_epoch_step_goes_after_the_statement_holding_the_loop(self) -> None:
        before = lemur(
            learn="""
                with torch.enable_grad():
                    for inputs, labels in train_data:
                        loss = self.criteria[0](self(inputs), labels)
                        loss.backward()
                        self.optimizer.step()
            """
        )
        after = lemur(
            learn="""
                with torch.enable_grad():
                    for inputs, labels in train_data:
                        loss = self.criteria[0](self(inputs), labels)
                        loss.backward()
                        self.optimizer.step()
                self.scheduler.step()
            """
        )
        self.assertCodemod(before, after, variant="ExponentialLR_default")

    @data_provider(
        {
            "no_learn": (
                lemur(learn=None),
                "class Net has no learn() method; a LEMUR model defines "
                "train_setup(self, prm) and learn(self, train_data)",
            ),
            "no_optimizer_step": (
                lemur(learn="for inputs, labels in train_data:\n    pass"),
                "Net.learn() never calls self.optimizer.step() as a statement",
            ),
            "optimizer_step_on_the_line_of_its_if": (
                lemur(
                    learn="""
                        for inputs, labels in train_data:
                            if inputs is not None: self.optimizer.step()
                    """
                ),
                "Net.learn() never calls self.optimizer.step() as a statement",
            ),
            "optimizer_step_outside_a_loop": (
                lemur(
                    learn="""
                        for inputs, labels in train_data:
                            loss = self.criteria[0](self(inputs), labels)
                            loss.backward()
                        self.optimizer.step()
                    """
                ),
                "Net.learn() calls self.optimizer.step() outside any batch loop",
            ),
            "two_optimizer_steps": (
                lemur(
                    learn="""
                        for inputs, labels in train_data:
                            self.optimizer.step()
                            self.optimizer.step()
                    """
                ),
                (
                    "Net.learn() calls self.optimizer.step() 2 times; "
                    "expected one call inside the batch loop"
                ),
            ),
            "learn_already_steps_a_scheduler": (
                lemur(learn=LEARN + "self.scheduler.step()"),
                "Net.learn() already steps a scheduler" + REPLACE_HINT,
            ),
        }
    )
    def test_refuses(self, before: str, message: str) -> None:
        self.assertRefused(before, message, variant="StepLR_default")
        self.assertRefused(before, message, variant="OneCycleLR_default")

    def test_per_batch_step_goes_in_the_helper_that_steps_the_optimizer(
        self,
    ) -> None:
        before = lemur(helpers=UPDATE_HELPER, learn=LEARN_CALLING_HELPER)
        after = lemur(
            helpers="""
                def _update(net, inputs, labels):
                    net.optimizer.zero_grad()
                    loss = net.criteria[0](net(inputs), labels)
                    loss.backward()
                    net.optimizer.step()
                    if net.scheduler.last_epoch + 1 < net.scheduler.total_steps:
                        net.scheduler.step()
                    return loss
            """,
            learn="""
                total = 0.0
                if self.scheduler is None:
                    self.scheduler = self.build_scheduler(len(train_data))
                for inputs, labels in train_data:
                    total += self._update(inputs, labels).item()
                return total
            """,
        )
        self.assertCodemod(before, after, variant="OneCycleLR_default")

    def test_per_epoch_step_follows_the_loop_that_calls_the_helper(self) -> None:
        before = lemur(helpers=UPDATE_HELPER, learn=LEARN_CALLING_HELPER)
        after = lemur(
            helpers=UPDATE_HELPER,
            learn="""
                total = 0.0
                for inputs, labels in train_data:
                    total += self._update(inputs, labels).item()
                self.scheduler.step()
                return total
            """,
        )
        self.assertCodemod(before, after, variant="StepLR_default")

    def test_per_batch_step_follows_the_optimizer_after_a_continue(self) -> None:
        before = lemur(
            learn="""
                for batch in train_data:
                    inputs, labels = batch
                    loss = self.criteria[0](self(inputs), labels)
                    loss.backward()
                    if not loss.isfinite():
                        continue
                    self.optimizer.step()
            """
        )
        after = lemur(
            learn="""
                if self.scheduler is None:
                    self.scheduler = self.build_scheduler(len(train_data))
                for batch in train_data:
                    inputs, labels = batch
                    loss = self.criteria[0](self(inputs), labels)
                    loss.backward()
                    if not loss.isfinite():
                        continue
                    self.optimizer.step()
                    if self.scheduler.last_epoch + 1 < self.scheduler.total_steps:
                        self.scheduler.step()
            """
        )
        self.assertCodemod(before, after, variant="CyclicLR_exp_range")

    @data_provider(
        {
            "helper_called_through_another_helper": (
                UPDATE_HELPER
                + "\ndef _fit(self, x, y):\n    return self._update(x, y)",
                "for inputs, labels in train_data:\n    self._fit(inputs, labels)",
                (
                    "Net.learn() never calls self.optimizer.step(); Net._update() "
                    "does, but learn() never calls it as a method of Net: call it "
                    "in learn()'s batch loop as self.<method>(...), or step the "
                    "optimizer in learn()"
                ),
            ),
            "helper_called_outside_the_loop": (
                UPDATE_HELPER,
                "self._update(*next(iter(train_data)))",
                (
                    "Net.learn() calls self._update(), which steps the optimizer, "
                    "outside any batch loop"
                ),
            ),
            "helper_called_twice": (
                UPDATE_HELPER,
                """
                    for inputs, labels in train_data:
                        self._update(inputs, labels)
                        self._update(inputs, labels)
                """,
                (
                    "Net.learn() calls Net._update() 2 times, each stepping the "
                    "optimizer; expected one call inside the batch loop"
                ),
            ),
            "helper_steps_in_a_loop": (
                """
                    def _update(self, inputs, labels):
                        for _ in range(2):
                            self.optimizer.step()
                """,
                LEARN_CALLING_HELPER,
                (
                    "Net._update() calls self.optimizer.step() more than once a "
                    "call; expected one call, outside any loop, as learn() calls "
                    "it per batch"
                ),
            ),
            "helper_also_called_elsewhere": (
                UPDATE_HELPER + "\ndef warm_up(self, x, y):\n    self._update(x, y)",
                LEARN_CALLING_HELPER,
                (
                    "Net._update() steps the optimizer and Net.warm_up() calls it "
                    "too; the scheduler would step there as well: call it from "
                    "learn() only"
                ),
            ),
            "helper_already_steps_a_scheduler": (
                UPDATE_HELPER.replace(
                    "return loss", "net.scheduler.step()\nreturn loss"
                ),
                LEARN_CALLING_HELPER,
                "Net._update() already steps a scheduler" + REPLACE_HINT,
            ),
        }
    )
    def test_refuses_helper(self, helpers: str, learn: str, message: str) -> None:
        before = lemur(helpers=dedent(helpers), learn=learn)
        self.assertRefused(before, message, variant="StepLR_default")
        self.assertRefused(before, message, variant="OneCycleLR_default")


# ----------------------------------------------------------------------------
# RemoveLrSchedulerCommand
# ----------------------------------------------------------------------------

SETUP_WITH_STEP_LR = SETUP + (
    "self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 10, gamma=0.5)"
)
LEARN_STEPPING_PER_EPOCH = LEARN + "self.scheduler.step()"


class RemoveLrSchedulerTest(RefusalCodemodTest):
    TRANSFORM = RemoveLrSchedulerCommand

    def test_construction_and_per_epoch_step_are_removed(self) -> None:
        before = lemur(train_setup=SETUP_WITH_STEP_LR, learn=LEARN_STEPPING_PER_EPOCH)
        self.assertCodemod(before, MODEL)

    def test_imported_class_and_per_batch_step_are_removed_import_kept(
        self,
    ) -> None:
        header = MODEL_IMPORTS + (
            "from torch.optim.lr_scheduler import OneCycleLR as OC\n"
        )
        before = lemur(
            header=header,
            train_setup=SETUP + "self.sched = OC(self.optimizer, 0.1, total_steps=9)",
            learn=LEARN + "    self.sched.step()",
        )
        self.assertCodemod(before, lemur(header=header))

    def test_scheduler_set_in_init_and_stepped_in_a_method_is_removed(self) -> None:
        before = MODEL.replace(
            "        self.device = device\n",
            "        self.device = device\n        self.scheduler = None\n",
        ).replace(
            "            self.optimizer.step()\n",
            "            self.optimizer.step()\n"
            "            self.scheduler.step(); n = 1\n",
        )
        after = MODEL.replace(
            "            self.optimizer.step()\n",
            "            self.optimizer.step()\n            n = 1\n",
        )
        self.assertCodemod(before, after)

    def test_model_without_scheduler_is_unchanged(self) -> None:
        self.assertCodemod(MODEL, MODEL)

    @data_provider(
        {
            "rate_read_from_the_scheduler": (
                lemur(
                    train_setup=SETUP_WITH_STEP_LR,
                    learn=LEARN_STEPPING_PER_EPOCH
                    + "\nreturn self.scheduler.get_last_lr()",
                ),
                "--replace removes where the model builds and steps its scheduler "
                ".scheduler, but Net.learn() uses it otherwise too; remove that "
                "use from the model",
            ),
            "scheduler_in_a_local_name": (
                lemur(
                    header=MODEL_IMPORTS + "from torch.optim import lr_scheduler",
                    learn="decay = lr_scheduler.StepLR(self.optimizer, 9)\n"
                    + LEARN
                    + "decay.step()",
                ),
                "--replace cannot remove the model's scheduler: it uses "
                "lr_scheduler other than in `self.<name> = ...` in class Net; "
                "remove that use from the model",
            ),
        }
    )
    def test_refuses(self, before: str, message: str) -> None:
        self.assertRefused(before, message)


# ----------------------------------------------------------------------------
# AddLrSchedulerCommand, end to end
# ----------------------------------------------------------------------------


class AddLrSchedulerTest(RefusalCodemodTest):
    TRANSFORM = AddLrSchedulerCommand

    def test_running_twice_is_refused(self) -> None:
        self.assertRefused(
            add_scheduler(MODEL, "StepLR_default"),
            LRGEN_RAN,
            variant="StepLR_default",
        )

    def test_refusal_of_a_later_step_leaves_the_model_unchanged(self) -> None:
        self.assertRefused(
            lemur(declare="return {'lr', 'gamma'}"),
            "supported_hyperparameters() already declares gamma",
            variant="StepLR_default",
        )

    def test_imports_follow_a_module_docstring(self) -> None:
        code = add_scheduler('"""A small model."""\n\n' + MODEL, "OneCycleLR_default")
        self.assertTrue(
            code.startswith('"""A small model."""\n\nimport torch\n'), code[:80]
        )
        self.assertIn("from functools import partial\n", code)
        self.assertIn("from torch.optim import lr_scheduler\n", code)

    def test_imports_already_present_are_not_added_again(self) -> None:
        header = "import math\nfrom functools import partial\n" + MODEL_IMPORTS
        code = add_scheduler(lemur(header=header), "LambdaLR_cosine_like")
        for line in ["import math", "from functools import partial"]:
            self.assertEqual(count_lines(code, line), 1, line)
        self.assertEqual(count_lines(code, "from torch.optim import lr_scheduler"), 1)

    def test_model_with_a_scheduler_is_refused_by_default(self) -> None:
        self.assertRefused(
            lemur(train_setup=SETUP_WITH_STEP_LR, learn=LEARN_STEPPING_PER_EPOCH),
            USES_LR_SCHEDULER,
            variant="StepLR_default",
        )

    def test_replace_keeps_one_import_of_lr_scheduler(self) -> None:
        header = MODEL_IMPORTS + "from torch.optim import lr_scheduler\n"
        before = lemur(
            header=header,
            train_setup=SETUP
            + "self.scheduler = lr_scheduler.StepLR(self.optimizer, 9)",
            learn=LEARN_STEPPING_PER_EPOCH,
        )
        code = add_scheduler(before, "OneCycleLR_default", replace=True)
        self.assertEqual(count_lines(code, "from torch.optim import lr_scheduler"), 1)
        self.assertEqual(code.count(".scheduler.step()"), 1)
        self.assertNotIn("StepLR(self.optimizer, 9)", code)

    def test_replace_refuses_its_own_output(self) -> None:
        self.assertRefused(
            add_scheduler(MODEL, "StepLR_default"),
            LRGEN_RAN,
            variant="CosineAnnealingLR_default",
            replace=True,
        )

    def test_replace_without_a_scheduler_adds_as_usual(self) -> None:
        self.assertEqual(
            add_scheduler(MODEL, "CyclicLR_triangular", replace=True),
            add_scheduler(MODEL, "CyclicLR_triangular"),
        )


MODEL_WITH_STEP_LR = lemur(
    train_setup=SETUP_WITH_STEP_LR, learn=LEARN_STEPPING_PER_EPOCH
)
MODEL_WITH_CYCLIC_LR = lemur(
    train_setup=SETUP
    + "self.scheduler = torch.optim.lr_scheduler.CyclicLR(self.optimizer, 0.1, 1)",
    learn=LEARN + "    self.scheduler.step()",
)


@pytest.mark.parametrize("variant", VARIANT_NAMES)
@pytest.mark.parametrize(
    "before",
    [
        pytest.param(MODEL_WITH_STEP_LR, id="per_epoch_step_lr"),
        pytest.param(MODEL_WITH_CYCLIC_LR, id="per_batch_cyclic_lr"),
    ],
)
def test_replace_gives_the_variant_added_to_the_model_without(
    before: str, variant: str
) -> None:
    assert add_scheduler(before, variant, replace=True) == add_scheduler(
        MODEL, variant
    )


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_output_compiles(variant: str) -> None:
    compile(add_scheduler(MODEL, variant), f"{variant}.py", "exec")


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_running_twice_never_injects_twice(variant: str) -> None:
    once = add_scheduler(MODEL, variant)
    command = AddLrSchedulerCommand(CodemodContext(), variant)
    with pytest.raises(ModelRefused, match=f"^{re.escape(LRGEN_RAN)}$"):
        command.transform_module(cst.parse_module(once))


def _is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    rest = iter(haystack)
    return all(any(line == candidate for candidate in rest) for line in needles)


RESNET18 = (PROJECT_ROOT / "base_model" / "resnet18.py").read_text()


@pytest.mark.parametrize(
    ("base", "variant"),
    [pytest.param(MODEL, name, id=f"small_model-{name}") for name in VARIANT_NAMES]
    + [
        pytest.param(RESNET18, name, id=f"resnet18-{name}")
        for name in ["StepLR_default", "OneCycleLR_default", "LambdaLR_cosine_like"]
    ],
)
def test_only_adds_lines_except_the_declaration(base: str, variant: str) -> None:
    kept = [line for line in base.splitlines() if not line.startswith("    return {")]
    assert len(kept) == len(base.splitlines()) - 1
    assert _is_subsequence(kept, add_scheduler(base, variant).splitlines())


# ----------------------------------------------------------------------------
# LibCST's own CLI, configured by .libcst.codemod.yaml
# ----------------------------------------------------------------------------


def run_libcst_codemod(
    path: Path, variant: str = "CosineAnnealingLR_default", *options: str
) -> subprocess.CompletedProcess[str]:
    """The command .libcst.codemod.yaml documents, on an absolute path."""
    return subprocess.run(
        [
            sys.executable, "-m", "libcst.tool", "codemod",
            "add_lr_scheduler.AddLrSchedulerCommand",
            "--variant", variant, *options, str(path.resolve()),
        ],
        cwd=PROJECT_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def test_cli_adds_the_scheduler(model_file: Path) -> None:
    result = run_libcst_codemod(model_file)
    assert result.returncode == 0, result.stderr
    code = model_file.read_text()
    assert "lr_scheduler.CosineAnnealingLR(" in code
    assert "from torch.optim import lr_scheduler\n" in code
    assert code == add_scheduler(MODEL, "CosineAnnealingLR_default")


def test_cli_leaves_a_model_without_optimizer_unchanged(tmp_path: Path) -> None:
    source = lemur(train_setup="self.criteria = (nn.CrossEntropyLoss(),)")
    path = tmp_path / "model.py"
    path.write_text(source)
    result = run_libcst_codemod(path)
    assert result.returncode == 0, result.stderr
    assert path.read_text() == source
    assert "Net.train_setup() never assigns self.optimizer" in result.stderr


def test_cli_names_close_variants_for_a_mistyped_one(model_file: Path) -> None:
    before = model_file.read_text()
    result = run_libcst_codemod(model_file, variant="CosineAnealingLR_default")
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith(
        "libcst.tool codemod: error: argument --variant: unknown variant "
        "'CosineAnealingLR_default'; did you mean CosineAnnealingLR_default, "
    )
    assert last.endswith("('lrgen list' shows all 30)")
    assert "Traceback" not in result.stderr
    assert model_file.read_text() == before


def test_cli_replaces_a_scheduler_with_replace(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text(MODEL_WITH_STEP_LR)
    refused = run_libcst_codemod(path)
    assert refused.returncode == 0, refused.stderr
    assert path.read_text() == MODEL_WITH_STEP_LR
    assert REPLACE_HINT in refused.stderr
    result = run_libcst_codemod(path, "CosineAnnealingLR_default", "--replace")
    assert result.returncode == 0, result.stderr
    assert path.read_text() == add_scheduler(MODEL, "CosineAnnealingLR_default")
