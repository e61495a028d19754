"""Build a variant's scheduler in `train_setup()`, after the optimizer."""

from __future__ import annotations

import argparse

import libcst as cst
from libcst.codemod import CodemodCommand, CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from lrgen import catalog

from . import scheduler_code
from .model_shape import (
    BUILDER_FUNCTION,
    REPLACE_HINT,
    ModelRefused,
    existing_scheduler,
    find_function,
    find_method,
    find_net,
    model_quote,
    net_attributes,
    optimizer_assignment_index,
    parameter_name,
    replace_statement,
    top_level_names,
)
from .variant_argument import add_variant_argument


class BuildLrSchedulerCommand(CodemodCommand):
    """Appends the module-level `build_lr_scheduler()` of a variant (with the
    horizon helper and any rate rule it binds) and calls it in
    `Net.train_setup()` right after `self.optimizer` is assigned. A per-batch
    variant is only bound there: `learn()` builds it once `len(train_data)` is
    known, with its budget of epochs times batches as `total_steps`. Refuses
    a model without that assignment or with a scheduler; with `replace`, once
    RemoveLrSchedulerCommand has removed the model's own, an import of
    torch.optim.lr_scheduler it leaves is no scheduler."""

    DESCRIPTION = "Build a variant's LR scheduler in Net.train_setup()."

    def __init__(
        self, context: CodemodContext, variant: str, replace: bool = False
    ) -> None:
        super().__init__(context)
        self.variant = catalog.get(variant)
        self.replace = replace

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        add_variant_argument(arg_parser)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        present = existing_scheduler(tree, imports=not self.replace)
        if present is not None:
            ran = find_function(tree.body, BUILDER_FUNCTION) is not None
            hint = "" if ran else REPLACE_HINT
            raise ModelRefused(f"the model already has a scheduler: {present}{hint}")
        net = find_net(tree)
        train_setup = find_method(net, "train_setup")
        index = optimizer_assignment_index(train_setup)
        owner = parameter_name(train_setup, 0)
        prm = parameter_name(train_setup, 1)
        body = list(train_setup.body.body)
        body[index + 1 : index + 1] = scheduler_code.setup_statements(
            self.variant, owner, prm
        )
        updated = train_setup.with_changes(
            body=train_setup.body.with_changes(body=body)
        )
        functions = scheduler_code.module_functions(self.variant, model_quote(tree))
        imported = {
            name or module for module, name in scheduler_code.needed_imports(self.variant)
        }
        taken = top_level_names(tree) & ({f.name.value for f in functions} | imported)
        taken |= net_attributes(net) & {"build_scheduler"}
        if taken:
            raise ModelRefused(
                f"the model already defines {', '.join(sorted(taken))}, a name the "
                "scheduler code needs; rename it in the model"
            )
        tree = replace_statement(tree, train_setup, updated)
        for module, name in scheduler_code.needed_imports(self.variant):
            AddImportsVisitor.add_needed_import(self.context, module, name)
        return tree.with_changes(body=[*tree.body, *functions])
