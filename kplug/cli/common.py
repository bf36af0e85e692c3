"""Arguments and output shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_trust_model_argument(parser: argparse.ArgumentParser) -> None:
    """`--trust-model` (kplug run, kplug tune)."""
    parser.add_argument(
        "--trust-model",
        action="store_true",
        help="load model.init_from and teacher models even if they need unsafe "
        "deserialization (Lambda layers) or are legacy .h5 files; only for models you trust",
    )


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The `recipe` and `KEY=VALUE` override arguments of a command that runs a recipe."""
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="override recipe keys, e.g. train.epochs=1 optimizer.learning_rate=3e-4; "
        "~key deletes a key",
    )


def load(args: argparse.Namespace):
    """The validated recipe that `add_recipe_arguments`' arguments name."""
    from kplug.stages import load_recipe

    return load_recipe(args.recipe, args.overrides)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Rows as a plain-text table with a header line, columns padded to their width."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)))
    return "\n".join(line.rstrip() for line in lines)
