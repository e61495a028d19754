"""What a variant changes in its base model: diffs, their sizes, the code it
adds. Text only; nothing here imports torch."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass


def unified_diff(base: str, variant: str, base_name: str, variant_name: str) -> str:
    """The unified diff (3 lines of context) from the base model's text to a
    variant's, as `diff -u` and `git diff` print it."""
    lines = difflib.unified_diff(
        base.splitlines(keepends=True),
        variant.splitlines(keepends=True),
        fromfile=base_name,
        tofile=variant_name,
    )
    # A last line without a newline is marked as `diff` marks it, so that
    # `patch` gives the variant back byte for byte.
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        for line in lines
    )


@dataclass(frozen=True)
class Change:
    """A run of base lines a variant replaces (often none) and the lines it
    puts there; `after` is the number of the base line just before it."""

    after: int
    removed: tuple[str, ...]
    added: tuple[str, ...]


def changes(base: str, variant: str) -> Iterator[Change]:
    """Every place the variant departs from the base, in file order."""
    old, new = base.splitlines(), variant.splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            yield Change(i1, tuple(old[i1:i2]), tuple(new[j1:j2]))


def stat(base: str, variant: str) -> tuple[int, int]:
    """Lines added and lines removed."""
    found = list(changes(base, variant))
    return sum(len(c.added) for c in found), sum(len(c.removed) for c in found)


def stat_bar(added: int, removed: int, width: int) -> str:
    """git's `--stat` bar: one + or - a line, scaled down to `width`."""
    total = added + removed
    if total > width:
        plus = round(added * width / total)
        if removed and plus == width:  # a removed line always shows
            plus -= 1
        return "+" * plus + "-" * (width - plus)
    return "+" * added + "-" * removed
