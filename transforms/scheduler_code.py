"""The code a variant adds to a model. What only the variant decides (the
functions appended to the module) is the catalog's templates filled in and
parsed by LibCST once per variant, then given the model's quote style as
nodes; the lines that go into the model's methods are LibCST templates whose
placeholders, the model's own names, are filled with nodes."""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Sequence
from typing import Any

import libcst as cst
from libcst.helpers import parse_template_statement

from lrgen.catalog import RULES, Variant

from .model_shape import BUILDER_FUNCTION

HORIZON_FUNCTION = "lr_schedule_epochs"

# The per-batch scheduler's attribute holding its budget, epochs times batches
# per epoch: learn() steps it only while that lasts, so the rate then holds.
# OneCycleLR's own name for it; the builder sets it on every per-batch
# scheduler, and state_dict() saves it, so a resumed run holds at the same step.
BUDGET = "total_steps"

_HORIZON = '''
def lr_schedule_epochs(prm):
    """Epochs the schedule spans: prm['epoch_max'], else prm['epoch']."""
    for key in ('epoch_max', 'epoch'):
        if prm.get(key) is not None:
            return max(1, int(prm[key]))
    raise KeyError(
        "prm has neither 'epoch_max' nor 'epoch': set the epochs to schedule over"
    )
'''

# Imports each piece of generated code needs, as (module, name) pairs.
SCHEDULER_IMPORT: tuple[str, str | None] = ("torch.optim", "lr_scheduler")
PARTIAL_IMPORT: tuple[str, str | None] = ("functools", "partial")
MATH_IMPORT: tuple[str, str | None] = ("math", None)


def builder_source(variant: Variant) -> str:
    """Source of `build_lr_scheduler`: the horizon, one mapped local per
    hyperparameter, then the variant's own template; a per-batch template
    binds `scheduler`, which gets its budget and is returned. Every
    placeholder is filled: a hyperparameter's `{x}` with its `prm['key']`
    read, a fixed value with its string literal, `{rule}` with the rate rule
    bound by `partial`. Strings are single-quoted, whatever the model uses."""
    when = "every batch" if variant.stepping == "batch" else "once per epoch"
    params = "optimizer, prm"
    if variant.stepping == "batch":
        params += ", batches_per_epoch"
    lines = [
        f"def {BUILDER_FUNCTION}({params}):",
        f'    """The {variant.name} schedule, stepped {when}."""',
        f"    epochs = {HORIZON_FUNCTION}(prm)",
    ]
    if variant.stepping == "batch":
        lines.append("    total_steps = epochs * batches_per_epoch")
    for h in variant.hparams:
        template = _filled(h.mapping.template, {"x": f"prm[{h.key!r}]"})
        line = f"    {h.key} = {template}  # {h.mapping.describe()}"
        if len(line) > 88:  # the range goes on a line of its own
            line = f"    # {h.key}: {h.mapping.describe()}\n    {h.key} = {template}"
        lines.append(line)
    template = variant.template.strip("\n")
    values = {name: repr(literal) for name, literal in variant.fixed.items()}
    if "{rule}" in template:  # else the template names its rule itself
        bound = ", ".join(f"{arg}={arg}" for arg in variant.rule_args)
        values["rule"] = f"partial({variant.rule}, {bound})"
    template = _filled(template, values)
    lines.append(textwrap.indent(template, "    "))
    if variant.stepping == "batch":
        lines += [
            f"    scheduler.{BUDGET} = total_steps"
            "  # learn() holds the rate after these batches",
            "    return scheduler",
        ]
    return "\n".join(lines) + "\n"


def _filled(template: str, values: dict[str, str]) -> str:
    """The template with each `{name}` replaced by the text of its value."""
    for name, text in values.items():
        placeholder = "{" + name + "}"
        if placeholder not in template:
            raise ValueError(f"the template has no {placeholder}: {template!r}")
        template = template.replace(placeholder, text)
    return template


class _SameVariant:
    """A variant as a cache key: hashed by name, equal to an equal variant
    (a Variant holds a dict, so it cannot be hashed itself)."""

    __slots__ = ("variant",)

    def __init__(self, variant: Variant) -> None:
        self.variant = variant

    def __hash__(self) -> int:
        return hash(self.variant.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SameVariant) and (
            other.variant is self.variant or other.variant == self.variant
        )


class _QuoteStyle(cst.CSTTransformer):
    """Writes plain single-quoted strings with double quotes instead."""

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        text = updated_node.value
        if updated_node.quote == "'" and '"' not in text:
            return updated_node.with_changes(value=f'"{text[1:-1]}"')
        return updated_node


def module_functions(variant: Variant, quote: str) -> list[cst.FunctionDef]:
    """Module-level functions a variant appends: horizon, rule, builder."""
    return list(_module_functions(_SameVariant(variant), quote))


# LibCST nodes are immutable, so every tree can share these: a sweep over
# many bases parses a variant's code once and lays it out once per quote.
@functools.lru_cache(maxsize=256)
def _module_functions(key: _SameVariant, quote: str) -> tuple[cst.FunctionDef, ...]:
    variant = key.variant
    own = _laid_out(_builder(key), quote)
    return (*_helper_functions(variant.rule, quote), *own)


# The builder's text is the variant's alone, so it is parsed once whatever the
# model; a plain parse, as nothing is left to substitute (a template's two
# passes over the tree, substitution and check, cost twice the parse).
@functools.lru_cache(maxsize=256)
def _builder(key: _SameVariant) -> tuple[cst.BaseStatement, ...]:
    return tuple(cst.parse_module(builder_source(key.variant)).body)


@functools.lru_cache(maxsize=64)
def _helper_functions(rule: str | None, quote: str) -> tuple[cst.FunctionDef, ...]:
    """The horizon and any rate rule, the same for every variant of a rule."""
    sources = [_HORIZON]
    if rule is not None:
        sources.append(RULES[rule])
    return _laid_out(cst.parse_module("\n\n".join(sources)).body, quote)


def _laid_out(
    statements: Sequence[cst.BaseStatement], quote: str
) -> tuple[cst.FunctionDef, ...]:
    """Functions two blank lines apart, in the model's quote."""
    two_blank = [cst.EmptyLine(), cst.EmptyLine()]
    functions = [
        cst.ensure_type(statement, cst.FunctionDef).with_changes(
            leading_lines=two_blank
        )
        for statement in statements
    ]
    if quote == '"':
        functions = [
            cst.ensure_type(f.visit(_QuoteStyle()), cst.FunctionDef) for f in functions
        ]
    return tuple(functions)


def needed_imports(variant: Variant) -> list[tuple[str, str | None]]:
    imports: list[tuple[str, str | None]] = [SCHEDULER_IMPORT]
    if variant.rule is not None:
        imports.append(PARTIAL_IMPORT)
    if variant.rule == "cosine_decay":
        imports.append(MATH_IMPORT)
    if variant.stepping == "batch":
        imports.append(PARTIAL_IMPORT)
    return list(dict.fromkeys(imports))


# The statements below go into the model's own methods, so the names they use
# are the model's: its methods' first parameter, train_setup's prm, learn's
# batches. Those go in as nodes, in templates parsed once per set of names.


def _names(**names: str) -> dict[str, Any]:
    """Template values: a Name node per placeholder (typed Any, as mypy would
    match a ** argument against the templates' `config` parameter too)."""
    return {placeholder: cst.Name(name) for placeholder, name in names.items()}


def setup_statements(variant: Variant, owner: str, prm: str) -> list[cst.BaseStatement]:
    """Lines train_setup gains right after the optimizer is assigned."""
    return list(_setup_statements(variant.stepping, owner, prm))


@functools.lru_cache(maxsize=256)
def _setup_statements(
    stepping: str, owner: str, prm: str
) -> tuple[cst.BaseStatement, ...]:
    names = _names(owner=owner, prm=prm, builder=BUILDER_FUNCTION)
    if stepping == "epoch":
        return (
            parse_template_statement(
                "{owner}.scheduler = {builder}({owner}.optimizer, {prm})", **names
            ),
        )
    return (
        parse_template_statement("{owner}.scheduler = None", owner=names["owner"]),
        parse_template_statement(
            "{owner}.build_scheduler = partial({builder}, {owner}.optimizer, {prm})",
            **names,
        ),
    )


@functools.lru_cache(maxsize=256)
def batch_scheduler_creation(owner: str, train_data: str) -> cst.BaseStatement:
    """learn's first use of a per-batch scheduler: build it for len(train_data)."""
    return parse_template_statement(
        "if {owner}.scheduler is None:\n"
        "    {owner}.scheduler = {owner}.build_scheduler(len({train_data}))\n",
        **_names(owner=owner, train_data=train_data),
    )


def step_statement(variant: Variant, owner: str) -> cst.BaseStatement:
    """The statement that steps the scheduler: a per-batch one only while the
    next batch is within its budget (OneCycleLR would raise past it, CyclicLR
    cycle on), so the rate holds at the budget's last batch."""
    return _step_statement(variant.stepping, owner)


@functools.lru_cache(maxsize=256)
def _step_statement(stepping: str, owner: str) -> cst.BaseStatement:
    if stepping == "batch":
        return parse_template_statement(
            "if {owner}.scheduler.last_epoch + 1 < {owner}.scheduler.{budget}:\n"
            "    {owner}.scheduler.step()\n",
            **_names(owner=owner, budget=BUDGET),
        )
    return parse_template_statement("{owner}.scheduler.step()", **_names(owner=owner))
