"""Turn a LEMUR model into one scheduler variant of the catalog."""

from __future__ import annotations

import argparse

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodCommand, CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from lrgen import catalog

from .build_lr_scheduler import BuildLrSchedulerCommand
from .declare_hyperparameters import DeclareHyperparametersCommand
from .remove_lr_scheduler import RemoveLrSchedulerCommand
from .step_lr_scheduler import StepLrSchedulerCommand
from .variant_argument import add_variant_argument

_DOCSTRING = m.SimpleStatementLine([m.Expr(m.SimpleString())])


class AddLrSchedulerCommand(CodemodCommand):
    """Declares a variant's keys, builds its scheduler in `train_setup()` and
    steps it in `learn()`, with the imports it needs. A model with a scheduler
    of its own is refused, unless `replace`: then that scheduler is removed
    first (RemoveLrSchedulerCommand), so that only the variant's steps. Any
    refusal leaves the file unchanged."""

    DESCRIPTION = "Add a catalog variant's LR scheduler to a LEMUR model."

    def __init__(
        self, context: CodemodContext, variant: str, replace: bool = False
    ) -> None:
        super().__init__(context)
        self.variant = catalog.get(variant)
        removal: list[CodemodCommand] = (
            [RemoveLrSchedulerCommand(context)] if replace else []
        )
        self.steps = [
            *removal,
            BuildLrSchedulerCommand(context, variant, replace=replace),
            StepLrSchedulerCommand(context, variant),
            DeclareHyperparametersCommand(context, variant),
        ]

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        add_variant_argument(arg_parser)
        arg_parser.add_argument(
            "--replace",
            action="store_true",
            help="replace a scheduler the model already has (default: refuse it)",
        )

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        for step in self.steps:
            tree = step.transform_module_impl(tree)
        return tree

    def transform_module(self, tree: cst.Module) -> cst.Module:
        """The three steps, then LibCST's AddImportsVisitor run over the
        module's leading imports only: the rest of the module is left as it
        is rather than copied and visited again."""
        tree = self.transform_module_impl(tree)
        if AddImportsVisitor.CONTEXT_KEY not in self.context.scratch:
            return tree
        split = import_block_end(tree)
        head = AddImportsVisitor(self.context).transform_module(
            tree.with_changes(body=tree.body[:split])
        )
        return tree.with_changes(body=[*head.body, *tree.body[split:]])


def import_block_end(module: cst.Module) -> int:
    """Index of the first top-level statement after the leading imports (a
    module docstring and `from __future__` count as part of them)."""
    end = 0
    for index, statement in enumerate(module.body):
        if not isinstance(statement, cst.SimpleStatementLine):
            break
        if all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body):
            end = index + 1
        elif not m.matches(statement, _DOCSTRING):
            break
    return end
