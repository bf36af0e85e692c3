"""`kplug data RECIPE`: run only the data stage and print its report."""

from __future__ import annotations

import argparse

from kplug.cli.common import add_recipe_arguments, load, print_json, table


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="load (and clean) a recipe's data only",
        description="Run the data stage of a recipe and print its report.",
    )
    add_recipe_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from kplug.stages import data_report, prepare_data, set_up

    ctx = set_up(load(args))
    with ctx.strategy.scope():
        prepare_data(ctx)
    report = data_report(ctx.data)
    if args.json:
        print_json(report)
        return 0
    print(table([[k, v] for k, v in report.pop("examples").items()], ["split", "examples"]))
    for key, value in report.items():
        print()
        print_section(key, value)
    return 0


def print_section(key: str, value) -> None:
    """A report entry: a list of same-keyed dicts as a table, anything else as a line."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        headers = list(value[0])
        print(f"{key}:")
        print(table([[row.get(h, "") for h in headers] for row in value], headers))
    else:
        print(f"{key}: {value}")
