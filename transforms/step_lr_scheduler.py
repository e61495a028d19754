"""Step a variant's scheduler in `learn()`, after the optimizer steps."""

from __future__ import annotations

import argparse

import libcst as cst
from libcst.codemod import CodemodCommand, CodemodContext

from lrgen import catalog

from . import scheduler_code
from .model_shape import (
    REPLACE_HINT,
    ModelRefused,
    find_method,
    find_net,
    is_optimizer_step,
    optimizer_step_site,
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
    The optimizer may step in a helper method that the batch loop calls as
    `self.<helper>(...)`: a per-batch variant then steps in the helper.
    Refuses a `learn()` without exactly one `self.optimizer.step()` inside a
    loop, directly or through one such call."""

    DESCRIPTION = "Step a variant's LR scheduler in Net.learn()."

    def __init__(self, context: CodemodContext, variant: str) -> None:
        super().__init__(context)
        self.variant = catalog.get(variant)

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        add_variant_argument(arg_parser)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        net = find_net(tree)
        learn = find_method(net, "learn")
        if steps_a_scheduler(learn):
            raise ModelRefused(f"Net.learn() already steps a scheduler{REPLACE_HINT}")
        owner = parameter_name(learn, 0)
        train_data = parameter_name(learn, 1)
        site, loop_index = optimizer_step_site(net, learn)
        if site is not learn and steps_a_scheduler(site):
            raise ModelRefused(
                f"Net.{site.name.value}() already steps a scheduler{REPLACE_HINT}"
            )
        if self.variant.stepping == "batch":
            # the step follows the optimizer's, in learn or in its helper
            site_owner = parameter_name(site, 0)
            stepper = _StepAfterOptimizer(
                site_owner, scheduler_code.step_statement(self.variant, site_owner)
            )
            updated = site.with_changes(body=site.body.visit(stepper))
            if site is not learn:
                tree = replace_statement(tree, site, updated)
                updated = learn
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
