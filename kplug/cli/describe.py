"""`kplug describe NAME`: a component's parameters, types, defaults, summary and plugin."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kplug.cli.common import print_json, table
from kplug.cli.type_names import field_type
from kplug.errors import KplugError, unknown_name_message


def add_to(subparsers) -> None:
    parser = subparsers.add_parser("describe", help="show a component's parameters")
    parser.add_argument("name", help="a registered component name")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from kplug.plugins import registry

    reg = registry()
    found = reg.find(args.name)
    if not found:
        names = sorted({c.name for c in reg.all()})
        raise KplugError(unknown_name_message("component", args.name, names))
    if args.json:
        print_json([_described(c) for c in found])
        return 0
    for index, component in enumerate(found):
        info = _described(component)
        if index:
            print()
        print(f"{info['kind']} {info['name']}  (plugin {info['plugin']}; "
              f"backends: {', '.join(info['backends'])})")  # fmt: skip
        if info["summary"]:
            print(info["summary"])
        rows = [
            [p["name"], p["type"], "(required)" if p["required"] else json.dumps(p["default"]),
             p["description"]]
            for p in info["parameters"]
        ]  # fmt: skip
        if rows:
            print()
            print(table(rows, ["parameter", "type", "default", "description"]))
        else:
            print("no parameters")
    return 0


def summary(component: Any) -> dict[str, Any]:
    """A component's kind, name, summary, plugin and backends."""
    return {
        "kind": component.kind,
        "name": component.name,
        "summary": component.summary,
        "plugin": component.plugin,
        "backends": list(component.backends) or ["any"],
    }


def _described(component: Any) -> dict[str, Any]:
    """`summary` and the parameters: each one's type in words (`list of int > 0`),
    default, whether it is required and its description."""
    params = []
    for key, info in component.config.model_fields.items():
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        params.append({
            "name": info.alias or key,  # a recipe key that is a Python keyword (`lambda`)
            "type": field_type(info),
            "default": _jsonable(default),
            "required": required,
            "description": info.description or "",
        })  # fmt: skip
    return {**summary(component), "parameters": params}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):  # a nested config
        return value.model_dump(mode="json")
    if isinstance(value, str | int | float | bool | type(None)):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return str(value)
