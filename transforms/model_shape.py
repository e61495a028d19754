"""Predicates that locate the parts of a LEMUR model the codemods change."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
import libcst.matchers as m
from libcst.codemod import SkipFile

HYPERPARAMETERS_FUNCTION = "supported_hyperparameters"
BUILDER_FUNCTION = "build_lr_scheduler"
REPLACE_HINT = "; pass --replace to put the variant's scheduler in its place"


class ModelRefused(SkipFile):
    """The model has a shape the codemods do not handle; nothing is changed."""


def find_function(body: Sequence[cst.CSTNode], name: str) -> cst.FunctionDef | None:
    for statement in body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
            return statement
    return None


def find_net(module: cst.Module) -> cst.ClassDef:
    for statement in module.body:
        if isinstance(statement, cst.ClassDef) and statement.name.value == "Net":
            return statement
    raise ModelRefused(
        "no top-level class Net; a LEMUR model defines `class Net(nn.Module)`"
    )


def find_method(net: cst.ClassDef, name: str) -> cst.FunctionDef:
    method = find_function(net.body.body, name)
    if method is None:
        raise ModelRefused(
            f"class Net has no {name}() method; a LEMUR model defines "
            "train_setup(self, prm) and learn(self, train_data)"
        )
    return method


def parameter_name(method: cst.FunctionDef, index: int) -> str:
    """The name of a method's positional parameter (0 is `self`)."""
    params = method.params.params
    if len(params) <= index:
        raise ModelRefused(
            f"Net.{method.name.value}() takes {len(params)} parameter(s), "
            f"expected at least {index + 1}"
        )
    return params[index].name.value


def self_attribute(owner: str, attribute: str) -> m.Attribute:
    return m.Attribute(value=m.Name(owner), attr=m.Name(attribute))


def is_attribute_assignment(
    statement: cst.CSTNode, owner: str, attribute: str
) -> bool:
    """`owner.attribute = ...` as a statement line of its own."""
    target = m.AssignTarget(target=self_attribute(owner, attribute))
    return m.matches(
        statement,
        m.SimpleStatementLine(
            body=[m.Assign(targets=[target]) | m.AnnAssign(target=target.target)]
        ),
    )


def is_optimizer_step(statement: cst.CSTNode, owner: str) -> bool:
    """`owner.optimizer.step()` as a statement line of its own."""
    call = m.Call(
        func=m.Attribute(value=self_attribute(owner, "optimizer"), attr=m.Name("step"))
    )
    return m.matches(statement, m.SimpleStatementLine(body=[m.Expr(value=call)]))


def optimizer_assignment_index(train_setup: cst.FunctionDef) -> int:
    """Index, in the body of train_setup, of the last `self.optimizer = ...`."""
    owner = parameter_name(train_setup, 0)
    body = train_setup.body.body
    found = [
        i for i, s in enumerate(body) if is_attribute_assignment(s, owner, "optimizer")
    ]
    every = m.findall(
        train_setup.body,
        m.AssignTarget(target=self_attribute(owner, "optimizer"))
        | m.AnnAssign(target=self_attribute(owner, "optimizer")),
    )
    if found and len(every) == len(found):
        return found[-1]
    if every:
        raise ModelRefused(
            "Net.train_setup() assigns self.optimizer inside a block; "
            "assign it once, at the top level of the method"
        )
    raise ModelRefused(
        "Net.train_setup() never assigns self.optimizer; "
        "create the optimizer there as `self.optimizer = ...`"
    )


class _LoopTracker(cst.CSTVisitor):
    """Keeps `loops`, the `for` and `while` statements around the node
    being visited, outermost first."""

    def __init__(self) -> None:
        self.loops: list[cst.CSTNode] = []

    def visit_For(self, node: cst.For) -> None:
        self.loops.append(node)

    def leave_For(self, original_node: cst.For) -> None:
        self.loops.pop()

    def visit_While(self, node: cst.While) -> None:
        self.loops.append(node)

    def leave_While(self, original_node: cst.While) -> None:
        self.loops.pop()


class _StepFinder(_LoopTracker):
    """Records the loops that enclose each `self.optimizer.step()` statement."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        super().__init__()
        self.steps: list[tuple[cst.SimpleStatementLine, tuple[cst.CSTNode, ...]]] = []

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        if is_optimizer_step(node, self.owner):
            self.steps.append((node, tuple(self.loops)))
        return False


def optimizer_step(learn: cst.FunctionDef) -> tuple[cst.SimpleStatementLine, int]:
    """The one `self.optimizer.step()` of learn, and the top-level statement
    index of the batch loop around it."""
    owner = parameter_name(learn, 0)
    finder = _StepFinder(owner)
    learn.body.visit(finder)
    if not finder.steps:
        raise ModelRefused(
            f"Net.learn() never calls {owner}.optimizer.step() as a statement"
        )
    if len(finder.steps) > 1:
        raise ModelRefused(
            f"Net.learn() calls {owner}.optimizer.step() {len(finder.steps)} times; "
            "expected one call inside the batch loop"
        )
    step, loops = finder.steps[0]
    if not loops:
        raise ModelRefused(
            f"Net.learn() calls {owner}.optimizer.step() outside any batch loop"
        )
    return step, _holding_index(learn, loops[0])


def _holding_index(learn: cst.FunctionDef, loop: cst.CSTNode) -> int:
    """Index of the top-level statement of learn that holds `loop`."""
    for index, statement in enumerate(learn.body.body):
        if statement is loop or any(node is loop for node in _descendants(statement)):
            return index
    raise ModelRefused("Net.learn() has a batch loop this codemod cannot place")


class _CallFinder(_LoopTracker):
    """Records the loops that enclose each call `owner.<method>(...)` of the
    named methods."""

    def __init__(self, owner: str, methods: set[str]) -> None:
        self.owner = owner
        self.methods = methods
        super().__init__()
        self.calls: list[tuple[str, tuple[cst.CSTNode, ...]]] = []

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if (
            m.matches(func, m.Attribute(value=m.Name(self.owner)))
            and cst.ensure_type(func, cst.Attribute).attr.value in self.methods
        ):
            name = cst.ensure_type(func, cst.Attribute).attr.value
            self.calls.append((name, tuple(self.loops)))


def _stepping_methods(net: cst.ClassDef) -> dict[str, cst.FunctionDef]:
    """Methods of Net, learn aside, whose body calls `self.optimizer.step()`
    as a statement (`self` being each method's own first parameter)."""
    found: dict[str, cst.FunctionDef] = {}
    for method in net.body.body:
        if not isinstance(method, cst.FunctionDef) or method.name.value == "learn":
            continue
        if not method.params.params:
            continue
        finder = _StepFinder(method.params.params[0].name.value)
        method.body.visit(finder)
        if finder.steps:
            found[method.name.value] = method
    return found


def optimizer_step_site(
    net: cst.ClassDef, learn: cst.FunctionDef
) -> tuple[cst.FunctionDef, int]:
    """The method that holds the one `self.optimizer.step()` of a batch:
    learn itself, or a helper method learn calls as `self.<helper>(...)` in
    its batch loop; and the index of the top-level statement of learn that
    holds that loop."""
    owner = parameter_name(learn, 0)
    finder = _StepFinder(owner)
    learn.body.visit(finder)
    stepping = _stepping_methods(net)
    if finder.steps or not stepping:
        return learn, optimizer_step(learn)[1]
    calls = _CallFinder(owner, set(stepping))
    learn.body.visit(calls)
    named = ", ".join(f"Net.{name}()" for name in sorted(stepping))
    if not calls.calls:
        raise ModelRefused(
            f"Net.learn() never calls {owner}.optimizer.step(); {named} does, "
            "but learn() never calls it as a method of Net: call it in learn()'s "
            f"batch loop as {owner}.<method>(...), or step the optimizer in learn()"
        )
    if len(calls.calls) > 1:
        raise ModelRefused(
            f"Net.learn() calls {named} {len(calls.calls)} times, each stepping "
            "the optimizer; expected one call inside the batch loop"
        )
    name, loops = calls.calls[0]
    helper = stepping[name]
    if not loops:
        raise ModelRefused(
            f"Net.learn() calls {owner}.{name}(), which steps the optimizer, "
            "outside any batch loop"
        )
    _helper_step(net, helper)
    return helper, _holding_index(learn, loops[0])


def _helper_step(net: cst.ClassDef, helper: cst.FunctionDef) -> None:
    """Refuses a helper that steps the optimizer more than once a call, or
    that a method other than learn calls too."""
    name = helper.name.value
    owner = parameter_name(helper, 0)
    finder = _StepFinder(owner)
    helper.body.visit(finder)
    if len(finder.steps) > 1 or finder.steps[0][1]:
        raise ModelRefused(
            f"Net.{name}() calls {owner}.optimizer.step() more than once a call; "
            "expected one call, outside any loop, as learn() calls it per batch"
        )
    for method in net.body.body:
        if (
            not isinstance(method, cst.FunctionDef)
            or method.name.value == "learn"
            or not method.params.params
        ):
            continue
        calls = _CallFinder(method.params.params[0].name.value, {name})
        method.body.visit(calls)
        if calls.calls:
            raise ModelRefused(
                f"Net.{name}() steps the optimizer and Net.{method.name.value}() "
                "calls it too; the scheduler would step there as well: call it "
                "from learn() only"
            )


def _descendants(node: cst.CSTNode) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []
    stack = list(node.children)
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(child.children)
    return found


class _SchedulerFinder(cst.CSTVisitor):
    """Notes any use of torch.optim.lr_scheduler and `<x>.scheduler = ...`."""

    def __init__(self, imports: bool = True) -> None:
        self.imports = imports
        self.uses_lr_scheduler = False
        self.assigns_scheduler = False

    def visit_Import(self, node: cst.Import) -> bool:
        return self.imports

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return self.imports

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == "lr_scheduler":
            self.uses_lr_scheduler = True

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        target = node.target
        if isinstance(target, cst.Attribute) and target.attr.value == "scheduler":
            self.assigns_scheduler = True


def existing_scheduler(module: cst.Module, imports: bool = True) -> str | None:
    """Why the model already has a learning-rate scheduler, if it does; with
    `imports` False, an import of torch.optim.lr_scheduler alone is none."""
    if find_function(module.body, BUILDER_FUNCTION) is not None:
        return f"it already defines {BUILDER_FUNCTION}() (was lrgen run on it?)"
    finder = _SchedulerFinder(imports)
    module.visit(finder)
    if finder.uses_lr_scheduler:
        return "it already uses torch.optim.lr_scheduler"
    if finder.assigns_scheduler:
        return "it already assigns a .scheduler attribute"
    return None


def top_level_names(module: cst.Module) -> set[str]:
    """Names the module binds at top level with def, class or assignment."""
    names: set[str] = set()
    for statement in module.body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            names.add(statement.name.value)
        for found in m.findall(statement, m.AssignTarget(target=m.Name())):
            target = cst.ensure_type(found, cst.AssignTarget).target
            names.add(cst.ensure_type(target, cst.Name).value)
    return names


def net_attributes(net: cst.ClassDef) -> set[str]:
    """Names Net defines as methods or assigns as `<x>.name = ...`."""
    names = {s.name.value for s in net.body.body if isinstance(s, cst.FunctionDef)}
    for found in m.findall(net, m.AssignTarget(target=m.Attribute())):
        target = cst.ensure_type(found, cst.AssignTarget).target
        names.add(cst.ensure_type(target, cst.Attribute).attr.value)
    return names


def replace_statement(
    module: cst.Module, old: cst.BaseStatement, new: cst.BaseStatement
) -> cst.Module:
    """The module with `old`, a top-level statement or a statement of a
    top-level class body, replaced by `new`; only that path is rebuilt."""
    body: list[cst.BaseStatement] = list(module.body)
    for i, statement in enumerate(body):
        if statement is old:
            body[i] = new
            return module.with_changes(body=body)
        if isinstance(statement, cst.ClassDef):
            members = list(statement.body.body)
            for j, member in enumerate(members):
                if member is old:
                    members[j] = new
                    body[i] = statement.with_changes(
                        body=statement.body.with_changes(body=members)
                    )
                    return module.with_changes(body=body)
    return cst.ensure_type(module.deep_replace(old, new), cst.Module)


def steps_a_scheduler(method: cst.FunctionDef) -> bool:
    return bool(m.findall(method, m.Attribute(attr=m.Name("scheduler"))))


def quote_style(literal: cst.Set | cst.List) -> str:
    """The quote a literal's strings use: ' unless they use "."""
    for element in literal.elements:
        if isinstance(element.value, cst.SimpleString):
            return element.value.quote[-1]
    return "'"


def model_quote(module: cst.Module) -> str:
    """The quote the model writes its hyperparameter keys with."""
    function = find_function(module.body, HYPERPARAMETERS_FUNCTION)
    literals = m.findall(function, m.Set() | m.List()) if function else []
    return quote_style(literals[0]) if literals else "'"  # type: ignore[arg-type]
