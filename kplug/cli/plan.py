"""`kplug plan RECIPE [--build]`: components, sizes, steps and memory before running."""

from __future__ import annotations

import argparse

from kplug.cli.common import add_recipe_arguments, load, print_json, table


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show what a recipe will do",
        description="Resolved components, parameters, steps per epoch, batch per replica "
        "and memory. Without --build nothing heavy is imported.",
    )
    add_recipe_arguments(parser)
    parser.add_argument("--build", action="store_true", help="load the data and build the model")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from kplug.training.plan import plan

    result = plan(load(args), build=args.build)
    if args.json:
        print_json(result)
        return 0
    print(f"recipe {result['name']}")
    rows = [[c["section"], c["kind"], c["name"], c["plugin"]] for c in result["components"]]
    print(table(rows, ["section", "kind", "component", "plugin"]))
    print()
    for key, value in result.items():
        if key in ("name", "components"):
            continue
        if key == "parameters" and value is not None:
            value = f"{value:,}"
        print(f"{key.replace('_', ' ')}: {value}")
    if "parameters" not in result:
        print("parameters: unknown without building; run `kplug plan --build`")
    return 0
