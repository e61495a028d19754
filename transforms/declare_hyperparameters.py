"""Declare a variant's scheduler keys in `supported_hyperparameters()`."""

from __future__ import annotations

import argparse
import inspect

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodCommand, CodemodContext

from lrgen import catalog

from .model_shape import (
    HYPERPARAMETERS_FUNCTION,
    ModelRefused,
    find_function,
    quote_style,
    replace_statement,
)
from .variant_argument import add_variant_argument

_LITERAL_RETURN = m.SimpleStatementLine(
    body=[m.Return(value=m.Set() | m.List())]
)
_ONE_LINE = 88 - len("    return ")
_DOCSTRING = m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())])


def declared_keys(literal: cst.Set | cst.List) -> list[str]:
    keys = []
    for element in literal.elements:
        value = element.value
        if not isinstance(value, cst.SimpleString) or "b" in value.prefix.lower():
            raise ModelRefused(
                f"{HYPERPARAMETERS_FUNCTION}() returns a non-string element"
            )
        keys.append(str(value.evaluated_value))
    return keys


def returned_literal(function: cst.FunctionDef) -> cst.Set | cst.List:
    """The literal the function's first statement (after any docstring)
    returns."""
    body = list(function.body.body)
    if body and m.matches(body[0], _DOCSTRING):
        body = body[1:]
    if body and m.matches(body[0], _LITERAL_RETURN):
        line = cst.ensure_type(body[0], cst.SimpleStatementLine)
        value = cst.ensure_type(line.body[0], cst.Return).value
        if isinstance(value, (cst.Set, cst.List)):
            return value
    raise ModelRefused(
        f"{HYPERPARAMETERS_FUNCTION}() must start with `return` of a literal "
        "set or list of strings"
    )


class DeclareHyperparametersCommand(CodemodCommand):
    """Adds the scheduler keys of a variant to the literal set (or list) that
    `supported_hyperparameters()` returns. A docstring before that `return`
    is turned into a comment after it, since NNEval reads only a first-statement
    return. Refuses a computed return value and keys already declared."""

    DESCRIPTION = "Declare a variant's scheduler keys in supported_hyperparameters()."

    def __init__(self, context: CodemodContext, variant: str) -> None:
        super().__init__(context)
        self.variant = catalog.get(variant)

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        add_variant_argument(arg_parser)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        function = find_function(tree.body, HYPERPARAMETERS_FUNCTION)
        if function is None:
            raise ModelRefused(f"no module-level {HYPERPARAMETERS_FUNCTION}() function")
        literal = returned_literal(function)
        clash = sorted(set(declared_keys(literal)) & set(self.variant.keys))
        if clash:
            raise ModelRefused(
                f"{HYPERPARAMETERS_FUNCTION}() already declares {', '.join(clash)}"
            )
        extended = literal.with_changes(
            elements=extend_elements(literal, self.variant.keys)
        )
        code = cst.Module([]).code_for_node
        if "\n" in code(literal) or len(code(extended)) > _ONE_LINE:
            extended = one_key_per_line(extended)
        updated = cst.ensure_type(
            function.deep_replace(literal, extended), cst.FunctionDef
        )
        updated = return_first(updated)
        return replace_statement(tree, function, updated)


def extend_elements(
    literal: cst.Set | cst.List, keys: tuple[str, ...]
) -> list[cst.BaseElement]:
    """The literal's elements with `keys` appended, in its quote and spacing."""
    quote = quote_style(literal)
    elements = list(literal.elements)
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if elements:
        last = elements[-1]
        trailing = last.comma
        elements[-1] = last.with_changes(comma=comma)
    else:
        trailing = cst.MaybeSentinel.DEFAULT
    added: list[cst.BaseElement] = [
        cst.Element(cst.SimpleString(f"{quote}{key}{quote}"), comma=comma)
        for key in keys
    ]
    added[-1] = added[-1].with_changes(comma=trailing)
    return elements + added


def return_first(function: cst.FunctionDef) -> cst.FunctionDef:
    """Put a docstring that precedes the return after it, as a comment."""
    block = cst.ensure_type(function.body, cst.IndentedBlock)
    body = list(block.body)
    if not m.matches(body[0], _DOCSTRING):
        return function
    text = body[0].body[0].value.evaluated_value  # type: ignore[attr-defined]
    comments = [
        cst.EmptyLine(comment=cst.Comment(f"# {line}".rstrip()))
        for line in inspect.cleandoc(text).splitlines()
    ]
    ret, rest = body[1].with_changes(leading_lines=[]), body[2:]
    if rest:
        lines = [*comments, *getattr(rest[0], "leading_lines", [])]
        rest[0] = rest[0].with_changes(leading_lines=lines)
    else:
        block = block.with_changes(footer=[*comments, *block.footer])
    return function.with_changes(body=block.with_changes(body=[ret, *rest]))


def one_key_per_line(literal: cst.Set | cst.List) -> cst.Set | cst.List:
    """The literal laid out black-style: one key a line, trailing comma."""
    def newline(indent: str) -> cst.ParenthesizedWhitespace:
        return cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(),
            last_line=cst.SimpleWhitespace(indent),
        )
    elements = [
        e.with_changes(comma=cst.Comma(whitespace_after=newline("        ")))
        for e in literal.elements
    ]
    elements[-1] = elements[-1].with_changes(
        comma=cst.Comma(whitespace_after=newline("    "))
    )
    if isinstance(literal, cst.Set):
        return literal.with_changes(
            elements=elements,
            lbrace=cst.LeftCurlyBrace(whitespace_after=newline("        ")),
            rbrace=cst.RightCurlyBrace(),
        )
    return literal.with_changes(
        elements=elements,
        lbracket=cst.LeftSquareBracket(whitespace_after=newline("        ")),
        rbracket=cst.RightSquareBracket(),
    )
