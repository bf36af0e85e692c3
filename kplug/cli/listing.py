"""`kplug list [KIND] [--json]`: the registered components."""

from __future__ import annotations

import argparse

from kplug.cli.common import print_json, table
from kplug.errors import KplugError, unknown_name_message


def add_to(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list registered components")
    parser.add_argument("kind", nargs="?", help="one kind: dataset, architecture, objective, "
                        "... (those the loaded plugins declare)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from kplug.plugins import registry

    reg = registry()
    kind = _kind(args.kind, list(reg.components)) if args.kind else None
    components = reg.all(kind)
    if args.json:
        from kplug.cli.describe import summary

        print_json([summary(c) | {"parameters": None} for c in components])
        return 0
    rows = [[c.kind, c.name, c.plugin, c.summary] for c in components]
    print(table(rows, ["kind", "name", "plugin", "summary"]))
    for name, error in sorted(reg.failed_plugins.items()):
        print(f"plugin {name!r} failed to load: {error}")
    for message in reg.conflicts.values():
        print(message)
    return 0


def _kind(text: str, kinds: list[str]) -> str:
    singular = text[:-1] if text.endswith("s") and text[:-1] in kinds else text
    if singular not in kinds:
        raise KplugError(unknown_name_message("kind", text, kinds, known_label="kinds"))
    return singular
