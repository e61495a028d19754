"""The `--variant` argument every codemod takes on LibCST's command line."""

from __future__ import annotations

import argparse

from lrgen import catalog


def variant_name(text: str) -> str:
    """A catalog name or id, checked while the arguments are read, so that a
    mistyped one is a one-line usage error naming the close matches."""
    try:
        return catalog.get(text).name
    except catalog.UnknownVariantError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_variant_argument(arg_parser: argparse.ArgumentParser) -> None:
    arg_parser.add_argument(
        "--variant",
        required=True,
        type=variant_name,
        help="catalog name or id, e.g. StepLR_default ('lrgen list' shows all)",
    )
