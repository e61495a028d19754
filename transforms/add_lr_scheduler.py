"""Turn a LEMUR model into one scheduler variant of the catalog."""

from __future__ import annotations

import argparse

import libcst as cst
from libcst.codemod import CodemodCommand, CodemodContext

from lrgen import catalog

from .build_lr_scheduler import BuildLrSchedulerCommand
from .declare_hyperparameters import DeclareHyperparametersCommand
from .step_lr_scheduler import StepLrSchedulerCommand


class AddLrSchedulerCommand(CodemodCommand):
    """Declares a variant's keys, builds its scheduler in `train_setup()` and
    steps it in `learn()`, with the imports it needs. Any refusal of the three
    steps leaves the file unchanged."""

    DESCRIPTION = "Add a catalog variant's LR scheduler to a LEMUR model."

    def __init__(self, context: CodemodContext, variant: str) -> None:
        super().__init__(context)
        self.variant = catalog.get(variant)
        self.steps = [
            BuildLrSchedulerCommand(context, variant),
            StepLrSchedulerCommand(context, variant),
            DeclareHyperparametersCommand(context, variant),
        ]

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument(
            "--variant", required=True, help="catalog name or id, e.g. StepLR_default"
        )

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        for step in self.steps:
            tree = step.transform_module_impl(tree)
        return tree
