"""YAML in and out: safe loading that remembers the line of every key."""

from __future__ import annotations

import re
from typing import Any

import yaml

from kplug.errors import RecipeError

Path_ = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.2), as users write it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text into data and a map from key paths to 1-based line numbers."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = " ".join(str(p) for p in (error.context, error.problem) if p)
        if "python/" in str(error) or "could not determine a constructor" in str(error):
            problem += " (recipes are data: tags that build Python objects are not allowed)"
        raise RecipeError(f"{source}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"{source}: invalid YAML: {error}") from None
    lines: dict[Path_, int] = {}
    duplicates: list[str] = []
    if node is not None:
        _walk(node, (), lines, duplicates, source)
    if duplicates:
        raise RecipeError(duplicates)
    return data, lines


def _walk(node: yaml.Node, path: Path_, lines: dict, duplicates: list, source: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                line = key_node.start_mark.line + 1
                duplicates.append(f"{source}:{line}: duplicate key {dotted(path + (key,))!r}")
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines, duplicates, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines, duplicates, source)


def parse_value(text: str) -> Any:
    """A command-line value, typed as YAML would type it (`3`, `1e-3`, `[1, 2]`, `null`)."""
    try:
        return yaml.load(text, Loader=_Loader) if text.strip() else ""
    except yaml.YAMLError:
        return text


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path) if path else "(top level)"
