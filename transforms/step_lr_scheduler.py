"""Step a variant's scheduler in `learn()`, after the optimizer steps."""

from __future__ import annotations

import argparse

import libcst as cst
from libcst.codemod import CodemodCommand, CodemodContext

from lrgen import catalog

from . import scheduler_code
from .model_shape import (
    ModelRefused,
    find_method,
    find_net,
    is_optimizer_step,
    optimizer_step,
    parameter_name,
    replace_statement,
    steps_a_scheduler,
)
from .variant_argument import add_variant_argument


class _StepAfterOptimizer(cst.CSTTransformer):
    """Inserts a statement right after the `self.optimizer.step()` line."""

    def __init__(self, owner: str, statement: cst.BaseStatement) -> None:
        self.owner = owner
        self.statement = statement

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body: list[cst.BaseStatement] = []
        for statement in updated_node.body:
            body.append(statement)
            if is_optimizer_step(statement, self.owner):
                body.append(self.statement)
        return updated_node.with_changes(body=body)


class StepLrSchedulerCommand(CodemodCommand):
    """Steps the scheduler in `Net.learn()`: a per-epoch variant once after the
    batch loop, a per-batch variant right after `self.optimizer.step()` (so a
    batch that skips the optimizer skips the scheduler too) while its budget
    (`scheduler.total_steps`) lasts, built before the loop on the first call.
    Refuses a `learn()` without exactly one `self.optimizer.step()` inside a
    loop."""

    DESCRIPTION = "Step a variant's LR scheduler in Net.learn()."

    def __init__(self, context: CodemodContext, variant: str) -> None:
        super().__init__(context)
        self.variant = catalog.get(variant)

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        add_variant_argument(arg_parser)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        learn = find_method(find_net(tree), "learn")
        if steps_a_scheduler(learn):
            raise ModelRefused("Net.learn() already steps a scheduler")
        owner = parameter_name(learn, 0)
        train_data = parameter_name(learn, 1)
        _, loop_index = optimizer_step(learn)
        if self.variant.stepping == "batch":
            stepper = _StepAfterOptimizer(
                owner, scheduler_code.step_statement(self.variant, owner)
            )
            updated = learn.with_changes(body=learn.body.visit(stepper))
            body = list(updated.body.body)
            body.insert(
                loop_index, scheduler_code.batch_scheduler_creation(owner, train_data)
            )
        else:
            body = list(learn.body.body)
            step = scheduler_code.step_statement(self.variant, owner)
            body.insert(loop_index + 1, step)
        updated = learn.with_changes(body=learn.body.with_changes(body=body))
        return replace_statement(tree, learn, updated)
