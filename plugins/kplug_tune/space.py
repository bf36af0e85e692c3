"""The search space against a recipe: every key and value must make a valid recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kplug import Recipe, RecipeError, parse_yaml
from kplug_tune.config import SearchConfig


def override(key: str, value: Any) -> str:
    """`key=value` for `Recipe.with_overrides`; JSON is YAML, so the value keeps its type."""
    return f"{key}={json.dumps(value)}"


def check_against_recipe(recipe: Recipe, config: SearchConfig) -> None:
    """Refuse a space whose keys or values do not fit the recipe, before anything runs.

    Each key is tried with each of its choices (or both ends of its range) on its own;
    combinations are validated again, as whole recipes, when a trial starts.

    Raises:
        RecipeError: one problem per bad key and value, naming `search.space.<key>`.
    """
    problems: list[str] = []
    where = _where(recipe.source)
    for key, entry in config.space.items():
        for value in entry.candidates():
            text = override(key, value)
            try:
                recipe.with_overrides(["~search", text])
            except RecipeError as error:
                for problem in error.problems:
                    problem = problem.removeprefix(f"command line: {text}: ")
                    problems.append(
                        f"{where(('search', 'space', key))}: search.space.{key}: the value "
                        f"{value!r} does not fit the recipe: {problem}"
                    )
                break  # one bad value of a key says enough
    if problems:
        raise RecipeError(problems)


def values_of(config: SearchConfig, hyperparameters: Any) -> dict[str, Any]:
    """A trial's recipe values by key: the active ones, decoded from KerasTuner's form.
    Keys whose condition (`when:`) does not hold are left out: the recipe's value stays."""
    out = {}
    for key, entry in config.space.items():
        if key in hyperparameters.values and hyperparameters.is_active(key):
            out[key] = entry.decode(hyperparameters.values[key])
    return out


def _where(source: str):
    """`file:line` of a key of the recipe file, when the key is written in that file."""
    lines: dict = {}
    path = Path(source)
    if path.is_file():
        try:
            _, lines = parse_yaml(path.read_text("utf-8"), source)
        except (RecipeError, OSError, UnicodeDecodeError):
            lines = {}

    def where(key: tuple) -> str:
        return f"{source}:{lines[key]}" if key in lines else source

    return where
