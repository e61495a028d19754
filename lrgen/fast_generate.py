"""Many variants of one parsed base model: the base is examined once, then a
variant costs the codemods' edits of the few statements it changes and the
rendering of those alone, spliced into the base's own text.

The result equals the whole-module round trip
(`AddLrSchedulerCommand(...).transform_module(base).code`) byte for byte:

- the edits are the codemods' own: BuildLrSchedulerCommand runs on a module
  holding only class Net with only its train_setup, StepLrSchedulerCommand on
  one holding only class Net, DeclareHyperparametersCommand on one holding
  only `supported_hyperparameters()`, LibCST's AddImportsVisitor on the
  leading imports, as AddLrSchedulerCommand runs it;
- the checks that need the whole module (a scheduler already there, names the
  scheduler code needs) run on the whole module, once per base;
- a module's text is its header, its statements' texts and its footer, and a
  class's text is its head, its members' texts and its block's footer: every
  statement the variant leaves as it was (the same node) keeps the text it
  has in the base, and every other is rendered by LibCST in its place.

A base whose text does not split that way, and any refusal, take the whole
round trip instead: the codemods then refuse with their own message.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from transforms import scheduler_code
from transforms.add_lr_scheduler import AddLrSchedulerCommand, import_block_end
from transforms.build_lr_scheduler import BuildLrSchedulerCommand
from transforms.declare_hyperparameters import DeclareHyperparametersCommand
from transforms.model_shape import (
    HYPERPARAMETERS_FUNCTION,
    ModelRefused,
    existing_scheduler,
    find_function,
    find_method,
    find_net,
    model_quote,
    net_attributes,
    optimizer_step_site,
    parameter_name,
    replace_statement,
    top_level_names,
)
from transforms.remove_lr_scheduler import RemoveLrSchedulerCommand
from transforms.step_lr_scheduler import StepLrSchedulerCommand

from . import catalog
from .catalog import Variant

Imports = tuple[tuple[str, str | None], ...]


def full_round_trip(
    base: cst.Module, variant: Variant, path: Path | str, replace: bool = False
) -> str:
    """The reference: the whole-module codemod, then the whole module rendered."""
    command = AddLrSchedulerCommand(
        CodemodContext(filename=str(path)), variant.name, replace=replace
    )
    return command.transform_module(base).code


class _NoSplice(Exception):
    """The base's text does not split into its statements' texts."""


# The text of each appended function, rendered once per indent and newline:
# scheduler_code hands out the same nodes for a variant, so a sweep renders
# each once. The node is kept, so that its id is not reused.
_FUNCTION_TEXT: dict[tuple[int, str, str], tuple[cst.FunctionDef, str]] = {}
_FUNCTION_TEXTS_KEPT = 1024


def _function_text(module: cst.Module, function: cst.FunctionDef) -> str:
    key = (id(function), module.default_indent, module.default_newline)
    found = _FUNCTION_TEXT.get(key)
    if found is None:
        if len(_FUNCTION_TEXT) >= _FUNCTION_TEXTS_KEPT:
            _FUNCTION_TEXT.clear()
        found = _FUNCTION_TEXT[key] = (function, module.code_for_node(function))
    return found[1]


def _same_except(a: cst.CSTNode, b: cst.CSTNode, name: str) -> bool:
    """Whether two nodes of one type hold the same children, but for `name`."""
    return type(a) is type(b) and all(
        getattr(a, f.name) is getattr(b, f.name)
        for f in dataclasses.fields(a)
        if f.name != name
    )


class _ClassText:
    """A top-level class's text as head + members' texts + block footer, so
    that a member can be replaced by rendering it alone."""

    def __init__(self, module: cst.Module, cls: cst.ClassDef) -> None:
        block = cls.body
        if not isinstance(block, cst.IndentedBlock) or not block.body:
            raise _NoSplice
        self.module = module
        self.cls = cls
        self.block = block
        self.members = list(block.body)
        self.texts = [self.member_text(s) for s in self.members]
        with_footer = self.render_in_block([self.members[0]], block.footer)
        self.foot = with_footer[len(self.texts[0]) :]
        whole = module.code_for_node(cls)
        members = "".join(self.texts)
        self.head = whole[: len(whole) - len(members) - len(self.foot)]
        if self.head + members + self.foot != whole:
            raise _NoSplice

    def render_in_block(
        self, body: Sequence[cst.BaseStatement], footer: Sequence[cst.EmptyLine] = ()
    ) -> str:
        """The text of statements as members of this class (its indent), with
        the text of a stand-in class line taken off."""
        stand_in = cst.ClassDef(
            cst.Name("C"),
            cst.IndentedBlock(body=body, indent=self.block.indent, footer=footer),
        )
        text = self.module.code_for_node(stand_in)
        line = "class C:" + self.module.default_newline
        if not text.startswith(line):
            raise _NoSplice
        return text[len(line) :]

    def member_text(self, member: cst.BaseStatement) -> str:
        return self.render_in_block([member])

    def text_of(self, updated: cst.ClassDef) -> str:
        """The text of the class with some members changed: only those are
        rendered. Anything else changed, the whole class is."""
        block = updated.body
        if not (
            isinstance(block, cst.IndentedBlock)
            and _same_except(updated, self.cls, "body")
            and _same_except(block, self.block, "body")
            and len(block.body) == len(self.members)
        ):
            return self.module.code_for_node(updated)
        texts = [
            text if new is old else self.member_text(new)
            for new, old, text in zip(block.body, self.members, self.texts)
        ]
        return self.head + "".join(texts) + self.foot


class PreparedBase:
    """A parsed base model, examined once for every variant to come: the
    model's own scheduler taken out (with `replace`), the checks that need the
    whole module made, and its text split into its statements' texts.
    `code(variant)` then equals `full_round_trip(base, variant, path,
    replace)`, refusals included."""

    def __init__(
        self, base: cst.Module, path: Path | str, replace: bool = False
    ) -> None:
        self.base = base
        self.path = str(path)
        self.replace = replace
        # Net's text per edit, the imports' per set of imports, and
        # supported_hyperparameters()' per set of keys
        self._nets: dict[tuple[object, ...], tuple[object, str]] = {}
        self._heads: dict[Imports, str] = {}
        self._hps: dict[tuple[str, ...], str] = {}
        try:
            self._examine()
            self.fast = True
        except (ModelRefused, _NoSplice):
            self.fast = False  # every variant takes the whole round trip

    def _examine(self) -> None:
        tree = self.base
        if self.replace:
            context = CodemodContext(filename=self.path)
            tree = RemoveLrSchedulerCommand(context).transform_module_impl(tree)
        self.tree = tree
        # what BuildLrSchedulerCommand checks on the whole module
        if existing_scheduler(tree, imports=not self.replace) is not None:
            raise ModelRefused("a scheduler")
        self.net = find_net(tree)
        self.quote = model_quote(tree)
        self.top_names = top_level_names(tree)
        self.net_names = net_attributes(self.net) & {"build_scheduler"}
        hp = find_function(tree.body, HYPERPARAMETERS_FUNCTION)
        if hp is None:
            raise ModelRefused(f"no {HYPERPARAMETERS_FUNCTION}()")
        self.hp = hp
        # what the edits of Net depend on, beside the variant
        self.train_setup = find_method(self.net, "train_setup")
        self.owner = parameter_name(self.train_setup, 0)
        self.prm = parameter_name(self.train_setup, 1)
        learn = find_method(self.net, "learn")
        site, _ = optimizer_step_site(self.net, learn)
        self.site_owner = parameter_name(site, 0)
        # the text, split into the statements' texts
        code = tree.code_for_node
        self.header = "".join(code(line) for line in tree.header)
        self.footer = "".join(code(line) for line in tree.footer)
        self.texts = [code(statement) for statement in tree.body]
        joined = self.header + "".join(self.texts) + self.footer
        newline = tree.default_newline
        self.cut = 0 if tree.has_trailing_newline else len(newline)
        if tree.code != joined[: len(joined) - self.cut] or (
            self.cut and not joined.endswith(newline)
        ):
            raise _NoSplice
        self.split = import_block_end(tree)
        self.net_at = next(i for i, s in enumerate(tree.body) if s is self.net)
        self.hp_at = next(i for i, s in enumerate(tree.body) if s is hp)
        self.net_text = _ClassText(tree, self.net)
        self.block = self.net_text.block

    def code(self, variant: Variant) -> str:
        """The variant's module text."""
        variant = catalog.get(variant.name)  # what the codemods look up
        if self.fast:
            try:
                return self._splice(variant)
            except (ModelRefused, _NoSplice):
                pass
        return full_round_trip(self.base, variant, self.path, self.replace)

    def _splice(self, variant: Variant) -> str:
        functions = scheduler_code.module_functions(variant, self.quote)
        imports = tuple(scheduler_code.needed_imports(variant))
        # BuildLrSchedulerCommand's check of the names its code needs
        needed = {f.name.value for f in functions}
        needed |= {name or module for module, name in imports}
        if self.top_names & needed or self.net_names:
            raise ModelRefused("a name the scheduler code needs is taken")
        texts = list(self.texts)
        texts[self.net_at] = self._net_code(variant)
        texts[self.hp_at] = self._hp_code(variant)
        texts[: self.split] = [self._head_code(imports)]
        texts += [_function_text(self.tree, f) for f in functions]
        text = self.header + "".join(texts) + self.footer
        return text[: len(text) - self.cut]

    def _net_code(self, variant: Variant) -> str:
        """Net with the scheduler built in train_setup and stepped in learn
        (or its helper), by BuildLrSchedulerCommand and StepLrSchedulerCommand.
        They read the variant only through its stepping and scheduler_code's
        statements, which it hands out once per stepping: keyed by those, Net
        is edited and rendered once per kind of variant."""
        setup = tuple(scheduler_code.setup_statements(variant, self.owner, self.prm))
        step = scheduler_code.step_statement(variant, self.site_owner)
        key = (variant.stepping, *map(id, setup), id(step))
        found = self._nets.get(key)
        if found is None:
            context = CodemodContext(filename=self.path)
            # Build edits train_setup alone: its checks of the whole module
            # were made once, on the whole module
            only = self.block.with_changes(body=[self.train_setup])
            alone = self.tree.with_changes(body=[self.net.with_changes(body=only)])
            build = BuildLrSchedulerCommand(context, variant.name, self.replace)
            built = cst.ensure_type(
                find_net(build.transform_module_impl(alone)).body.body[0],
                cst.FunctionDef,
            )
            net = replace_statement(
                self.tree.with_changes(body=[self.net]), self.train_setup, built
            )
            step_command = StepLrSchedulerCommand(context, variant.name)
            text = self.net_text.text_of(
                find_net(step_command.transform_module_impl(net))
            )
            found = self._nets[key] = ((setup, step), text)
        return found[1]

    def _hp_code(self, variant: Variant) -> str:
        """supported_hyperparameters() with the variant's keys, by
        DeclareHyperparametersCommand, which reads the variant only through
        them: once per set of keys."""
        found = self._hps.get(variant.keys)
        if found is None:
            declare = DeclareHyperparametersCommand(
                CodemodContext(filename=self.path), variant.name
            )
            only = self.tree.with_changes(body=[self.hp])
            tree = declare.transform_module_impl(only)
            found = self._hps[variant.keys] = self.tree.code_for_node(tree.body[0])
        return found

    def _head_code(self, imports: Imports) -> str:
        """The leading imports with the variant's, by AddImportsVisitor as
        AddLrSchedulerCommand runs it: once per set of imports."""
        found = self._heads.get(imports)
        if found is None:
            head = self.tree.with_changes(body=self.tree.body[: self.split])
            if imports:
                context = CodemodContext(filename=self.path)
                for module, name in imports:
                    AddImportsVisitor.add_needed_import(context, module, name)
                head = AddImportsVisitor(context).transform_module(head)
            code = self.tree.code_for_node
            found = self._heads[imports] = "".join(code(s) for s in head.body)
        return found


# The bases prepared last, by the identity of their parsed module (kept, so
# that the id is not reused), path and `replace`.
_PREPARED: OrderedDict[tuple[int, str, bool], PreparedBase] = OrderedDict()
_KEEP = 8


def prepared(base: cst.Module, path: Path | str, replace: bool = False) -> PreparedBase:
    """The PreparedBase of a parsed base, made on its first variant."""
    key = (id(base), str(path), replace)
    found = _PREPARED.get(key)
    if found is None or found.base is not base:
        found = _PREPARED[key] = PreparedBase(base, path, replace)
        while len(_PREPARED) > _KEEP:
            _PREPARED.popitem(last=False)
    else:
        _PREPARED.move_to_end(key)
    return found


def variant_code(
    base: cst.Module, variant: Variant, path: Path | str, replace: bool = False
) -> str:
    """The code of one variant of a parsed base, equal to
    `full_round_trip(base, variant, path, replace)`; a refusal raises the
    codemods' ModelRefused."""
    return prepared(base, path, replace).code(variant)
