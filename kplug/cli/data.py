"""`kplug data RECIPE`: run only the data stage and print its report."""

from __future__ import annotations

import argparse

from kplug.cli.common import load, print_json, table


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="load (and clean) a recipe's data only",
        description="Run the data stage of a recipe and print its report. Datasets that "
        "prepare their data (token shards of text corpora) keep it in the data cache "
        "(KPLUG_DATA_CACHE, default ~/.cache/kplug/data), reused by every run with the "
        "same data section.",
    )
    parser.add_argument("recipe", nargs="?", help="recipe YAML file (not with --list/--clear)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="override recipe keys, e.g. data.workers=2")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--list", action="store_true", help="list the prepared datasets")
    parser.add_argument("--clear", action="store_true", help="remove every prepared dataset")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.list or args.clear:
        return _manage_cache(args)
    if args.recipe is None:
        from kplug.errors import RecipeError

        raise RecipeError("kplug data needs a recipe (or --list / --clear).")
    from kplug.stages import data_report, prepare_data, set_up

    ctx = set_up(load(args))
    with ctx.strategy.scope():
        prepare_data(ctx)
    report = data_report(ctx.data, f"dataset {ctx.recipe.data.name!r}")
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


def _manage_cache(args: argparse.Namespace) -> int:
    from kplug.data.cache import cache_root, clear_cache, list_prepared

    if args.clear:
        print(f"removed {clear_cache()} prepared datasets from {cache_root()}")
        return 0
    rows = list_prepared()
    if args.json:
        print_json(rows)
        return 0
    print(f"data cache: {cache_root()}")
    headers = ["key", "state", "megabytes", "dataset", "documents", "tokens", "source"]
    print(table([[row.get(h, "") for h in headers] for row in rows], headers))
    return 0
