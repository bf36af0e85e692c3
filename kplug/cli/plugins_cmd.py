"""`kplug plugins [--json]`: each plugin with its version and hooks."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from kplug.cli.common import print_json, table


def add_to(subparsers) -> None:
    parser = subparsers.add_parser("plugins", help="list loaded plugins and their hooks")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from kplug.plugins import plugins, registry

    infos = plugins()
    failed = registry().failed_plugins
    if args.json:
        print_json([asdict(p) | {"error": p.error or failed.get(p.name, "")} for p in infos])
        return 0
    rows = [
        [p.name, p.distribution, p.version, "built-in" if p.builtin else "third-party",
         ", ".join(p.hooks) if not (p.error or p.name in failed)
         else f"FAILED: {p.error or failed[p.name]}"]
        for p in infos
    ]  # fmt: skip
    print(table(rows, ["plugin", "distribution", "version", "origin", "hooks"]))
    for message in registry().conflicts.values():
        print(message)
    return 0
