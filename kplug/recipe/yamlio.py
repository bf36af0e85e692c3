"""YAML in and out: safe loading that remembers the line of every key."""

from __future__ import annotations

import re
from typing import Any

import yaml

from kplug.errors import RecipeError

Path_ = tuple[str | int, ...]

# A recipe is a page of settings. Aliases can make a short text stand for an exponential
# number of values ("billion laughs"); past this many the text is refused.
MAX_VALUES = 100_000


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
        lines: dict[Path_, int] = {}
        duplicates: list[str] = []
        if node is not None:
            _walk(node, (), lines, duplicates, source, _Budget(source))
        data = yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise RecipeError(
            f"{source}: invalid YAML: nested too deeply; a recipe is a few levels of sections."
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = " ".join(str(p) for p in (error.context, error.problem) if p)
        if "python/" in str(error) or "could not determine a constructor" in str(error):
            problem += " (recipes are data: tags that build Python objects are not allowed)"
        raise RecipeError(f"{source}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"{source}: invalid YAML: {error}") from None
    except Exception as error:
        # A tag the safe loader knows on a value it cannot convert (`!!int abc`, `!!int ''`)
        # fails inside PyYAML's constructors with ValueError, IndexError, ...
        raise RecipeError(
            f"{source}: invalid YAML value ({type(error).__name__}: {error}); check the "
            "values with a tag such as !!int or !!float."
        ) from None
    if duplicates:
        raise RecipeError(duplicates)
    return data, lines


class _Budget:
    """Counts the values a walk visits and the nodes above it, to refuse alias bombs and
    aliases that contain themselves."""

    def __init__(self, source: str):
        self.source, self.values, self.above = source, 0, set()

    def enter(self, node: yaml.Node) -> None:
        line = node.start_mark.line + 1
        if id(node) in self.above:
            raise RecipeError(
                f"{self.source}:{line}: invalid YAML: an alias refers to a value that "
                "contains it (a recursive structure); write the value out."
            )
        self.values += 1
        if self.values > MAX_VALUES:
            raise RecipeError(
                f"{self.source}:{line}: invalid YAML: more than {MAX_VALUES:,} values once "
                "aliases are expanded; a recipe is a page of settings."
            )


def _walk(
    node: yaml.Node, path: Path_, lines: dict, duplicates: list, source: str, budget: _Budget
) -> None:
    budget.enter(node)
    lines.setdefault(path, node.start_mark.line + 1)
    if not isinstance(node, yaml.CollectionNode):
        return
    budget.above.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a list or mapping as a key: the loader reports it
            key = key_node.value
            if key in seen:
                line = key_node.start_mark.line + 1
                duplicates.append(f"{source}:{line}: duplicate key {dotted(path + (key,))!r}")
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines, duplicates, source, budget)
    else:
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines, duplicates, source, budget)
    budget.above.discard(id(node))


def parse_value(text: str, source: str = "override") -> Any:
    """A command-line value, typed as YAML would type it (`3`, `1e-3`, `[1, 2]`, `null`).

    Text that is not YAML stays a string (`name=my run`); YAML that builds an object
    (`!!python/...`, `!foo`), has duplicate keys or expands aliases without end is refused,
    as it is in a recipe file.
    """
    if not text.strip():
        return ""
    try:
        yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, RecursionError):
        return text
    try:
        return parse(text, source)[0]
    except RecipeError as error:  # one command-line value: no line numbers to point at
        # A function as the replacement: `source` may hold backslashes (an escaped NUL).
        shown = re.sub(rf"{re.escape(source)}:\d+:", lambda _: f"{source}:", str(error))
        raise RecipeError(shown) from None


def dump(data: Any) -> str:
    """Data as block-style YAML, keys in their order, safe types only."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path) if path else "(top level)"
