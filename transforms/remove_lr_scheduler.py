"""Remove a model's own learning-rate scheduler, for a variant's to replace."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodCommand, CodemodContext

from .model_shape import (
    BUILDER_FUNCTION,
    ModelRefused,
    existing_scheduler,
    find_function,
    find_net,
    replace_statement,
)

SCHEDULER_MODULE = "torch.optim.lr_scheduler"


def _dotted(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def scheduler_names(module: cst.Module) -> set[str]:
    """Names that stand for torch.optim.lr_scheduler or a class of it: the
    module's own name and whatever the model imports from it."""
    names = {"lr_scheduler"}
    for found in m.findall(module, m.ImportFrom() | m.Import()):
        if isinstance(found, cst.ImportFrom):
            source = _dotted(found.module) if found.module else ""
            if isinstance(found.names, cst.ImportStar):
                continue
            for alias in found.names:
                full = f"{source}.{_dotted(alias.name)}"
                if source == SCHEDULER_MODULE or full == SCHEDULER_MODULE:
                    bound = alias.asname.name if alias.asname else alias.name
                    names.add(_dotted(bound))
        else:
            for alias in cst.ensure_type(found, cst.Import).names:
                if alias.asname and _dotted(alias.name) == SCHEDULER_MODULE:
                    names.add(_dotted(alias.asname.name))
    return names


class _NameUses(cst.CSTVisitor):
    """Names of a set used outside import statements."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.used: list[str] = []

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in self.names:
            self.used.append(node.value)


def scheduler_attributes(module: cst.Module, net: cst.ClassDef) -> set[str]:
    """Attributes of Net that hold a scheduler: `scheduler` where Net uses it,
    and any `<x>.<name> = ...` whose value uses torch.optim.lr_scheduler."""
    uses = m.Name(m.MatchIfTrue(scheduler_names(module).__contains__))
    found: set[str] = set()
    for assign in m.findall(net, m.Assign(targets=[m.AssignTarget(m.Attribute())])):
        assign = cst.ensure_type(assign, cst.Assign)
        if m.findall(assign.value, uses):
            target = cst.ensure_type(assign.targets[0].target, cst.Attribute)
            found.add(target.attr.value)
    if m.findall(net, m.Attribute(attr=m.Name("scheduler"))):
        found.add("scheduler")
    return found


class _SchedulerRemover(cst.CSTTransformer):
    """Drops statements that assign the attributes or step them."""

    def __init__(self, attributes: set[str]) -> None:
        self.attribute = m.Attribute(
            value=m.Name(), attr=m.Name(m.MatchIfTrue(attributes.__contains__))
        )

    def is_scheduler_statement(self, statement: cst.BaseSmallStatement) -> bool:
        step = m.Call(func=m.Attribute(value=self.attribute, attr=m.Name("step")))
        return m.matches(
            statement,
            m.Assign(targets=[m.AssignTarget(target=self.attribute)])
            | m.AnnAssign(target=self.attribute)
            | m.Expr(value=step),
        )

    def leave_SimpleStatementLine(
        self,
        original_node: cst.SimpleStatementLine,
        updated_node: cst.SimpleStatementLine,
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        kept = [s for s in updated_node.body if not self.is_scheduler_statement(s)]
        if not kept:
            return cst.RemoveFromParent()
        if len(kept) < len(updated_node.body):
            kept[-1] = kept[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(body=kept)


def refuse_other_uses(net: cst.ClassDef, attributes: set[str]) -> None:
    """Refuses a Net that still uses a scheduler attribute once the statements
    that build and step it are gone."""
    attribute = m.Attribute(attr=m.Name(m.MatchIfTrue(attributes.__contains__)))
    for method in net.body.body:
        left = m.findall(method, attribute)
        if left and isinstance(method, cst.FunctionDef):
            name = cst.ensure_type(left[0], cst.Attribute).attr.value
            raise ModelRefused(
                f"--replace removes where the model builds and steps its "
                f"scheduler .{name}, but Net.{method.name.value}() uses it "
                "otherwise too; remove that use from the model"
            )


class RemoveLrSchedulerCommand(CodemodCommand):
    """Removes the scheduler a model builds and steps itself: in class Net,
    every `self.<name> = ...` that builds it (a value using
    torch.optim.lr_scheduler, or any assignment of `self.scheduler`) and every
    `self.<name>.step(...)` statement. Imports are kept. Refuses a model that
    uses the scheduler otherwise (reads its rate, steps it in an expression),
    uses torch.optim.lr_scheduler outside such an assignment, or is lrgen's
    own output."""

    DESCRIPTION = "Remove the LR scheduler a LEMUR model builds and steps itself."

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        if find_function(tree.body, BUILDER_FUNCTION) is not None:
            # lrgen's own output: replacing would leave its functions behind
            reason = existing_scheduler(tree)
            raise ModelRefused(f"the model already has a scheduler: {reason}")
        net = find_net(tree)
        attributes = scheduler_attributes(tree, net)
        if attributes:
            updated = net.visit(_SchedulerRemover(attributes))
            net_left = cst.ensure_type(updated, cst.ClassDef)
            refuse_other_uses(net_left, attributes)
            tree = replace_statement(tree, net, net_left)
        uses = _NameUses(scheduler_names(tree))
        tree.visit(uses)
        if uses.used:
            raise ModelRefused(
                f"--replace cannot remove the model's scheduler: it uses "
                f"{uses.used[0]} other than in `self.<name> = ...` in class Net; "
                "remove that use from the model"
            )
        return tree
