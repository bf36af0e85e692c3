"""`kplug validate RECIPE [--print]`: check a recipe without running anything."""

from __future__ import annotations

import argparse

from kplug.cli.common import add_recipe_arguments, load


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate", help="check a recipe", description="Validate a recipe; exit 2 if invalid."
    )
    add_recipe_arguments(parser)
    parser.add_argument(
        "--print", action="store_true", dest="show", help="print the resolved recipe (YAML)"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    recipe = load(args)
    if args.show:
        print(recipe.to_yaml(), end="")
    else:
        parts = ", ".join(f"{k}={s.name}" for k, s in recipe.sections.items())
        print(f"{args.recipe}: valid ({recipe.name}: {parts})")
    return 0
