"""Command-line overrides: `key.sub=value` sets (creating sections as needed), `~key.sub`
deletes; list entries by index (`compression.1.name=prune`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kplug.errors import RecipeError
from kplug.recipe import yamlio

Origin = str  # "file:line" or "command line: key=value"
COMMAND_LINE = "command line: "
# Override keys deeper than any section are refused before they are walked.
MAX_KEY_DEPTH = 32


def parse_override(text: str) -> tuple[str, tuple[str | int, ...], Any]:
    """Parse `a.b=value` (set) or `~a.b` (delete) into (op, path, value)."""
    if text.startswith("~"):
        op, body, value = "delete", text[1:], None
        if "=" in body:
            raise RecipeError(f"override {text!r}: `~key` deletes a key and takes no value.")
    elif "=" in text:
        op = "set"
        body, raw_value = text.split("=", 1)
        value = yamlio.parse_value(raw_value, f"override {text!r}")
    else:
        raise RecipeError(
            f"override {text!r}: write key=value (for example train.epochs=3) or ~key to delete."
        )
    parts = body.strip().split(".")
    if not body.strip() or any(not p.strip() for p in parts):
        raise RecipeError(f"override {text[:200]!r}: the key is empty or has an empty part.")
    if len(parts) > MAX_KEY_DEPTH:
        raise RecipeError(
            f"override {text[:80]!r}...: the key is nested too deeply ({len(parts)} levels; "
            f"recipe keys have at most {MAX_KEY_DEPTH})."
        )
    # Only ASCII digits index a list: `²`.isdigit() is true, but int() refuses it.
    path = tuple(int(p) if p.isascii() and p.isdigit() else p for p in parts)
    return op, path, value


def apply_overrides(
    data: dict, overrides: Iterable[str], origins: dict[tuple, Origin] | None = None
) -> dict:
    """Apply command-line overrides to recipe data (in place) and return it."""
    origins = origins if origins is not None else {}
    for text in overrides:
        op, path, value = parse_override(text)
        if path[0] == "extends":
            raise RecipeError(f"override {text!r}: `extends` can only be set in the recipe file.")
        path = _dotted_keys(data, path)
        parent = data
        for depth, part in enumerate(path[:-1]):
            child = _child(parent, part, text, path[: depth + 1], create=op == "set")
            parent = child
        last = path[-1]
        if op == "delete":
            if isinstance(parent, dict) and last in parent:
                del parent[last]
            elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
                parent.pop(last)
            else:
                raise RecipeError(
                    f"override {text!r}: {yamlio.dotted(path)} is not in the recipe; "
                    "nothing to delete."
                )
            continue
        if isinstance(parent, list):
            if not isinstance(last, int) or last > len(parent):
                raise RecipeError(
                    f"override {text!r}: {yamlio.dotted(path[:-1])} is a list of "
                    f"{len(parent)}; index it with 0..{len(parent)}."
                )
            if last == len(parent):
                parent.append(value)
            else:
                parent[last] = value
        elif isinstance(parent, dict):
            parent[last] = value
        else:
            raise RecipeError(
                f"override {text!r}: {yamlio.dotted(path[:-1])} is a "
                f"{type(parent).__name__}, not a section; it has no key {last!r}."
            )
        for key in [k for k in origins if k[: len(path)] == path]:
            del origins[key]
        for n in range(1, len(path) + 1):  # keys this override created come from it too
            origins.setdefault(path[:n], COMMAND_LINE + text)
        origins[path] = COMMAND_LINE + text
    return data


def _dotted_keys(data: dict, path: tuple) -> tuple:
    """`path` with the parts that name one dotted key joined: in a mapping whose keys are
    recipe keys (`search.space: {optimizer.learning_rate: [...]}`), the rest of the
    override's key is one key when that key exists or the mapping's keys have dots."""
    parent: Any = data
    for depth, part in enumerate(path[:-1]):
        if not isinstance(parent, dict):
            break
        rest = ".".join(map(str, path[depth:]))
        if rest in parent or any("." in str(key) for key in parent):
            return (*path[:depth], rest)
        parent = parent.get(part) if not isinstance(part, int) else None
    return path


def _child(parent: Any, part: str | int, text: str, path: tuple, *, create: bool) -> Any:
    listed = isinstance(parent, list) and isinstance(part, int) and part < len(parent)
    if listed and isinstance(parent[part], str):  # a component by bare name takes parameters
        parent[part] = {"name": parent[part]}
    if isinstance(parent, dict):
        if part not in parent:
            if not create:
                raise RecipeError(f"override {text!r}: {yamlio.dotted(path)} is not in the recipe.")
            parent[part] = {}
        return parent[part]
    if isinstance(parent, list) and isinstance(part, int):
        if part == len(parent) and create:
            parent.append({})
        if part >= len(parent):
            raise RecipeError(
                f"override {text!r}: {yamlio.dotted(path[:-1])} has {len(parent)} entries; "
                f"there is no index {part}."
            )
        return parent[part]
    raise RecipeError(
        f"override {text!r}: {yamlio.dotted(path[:-1])} is not a section; it has no key {part!r}."
    )


def copy_data(value: Any) -> Any:
    """A deep copy of recipe data (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: copy_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_data(v) for v in value]
    return value
