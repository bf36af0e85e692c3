"""Recipes: YAML files turned into validated `Recipe` objects.

Precedence, lowest first: component defaults < `extends:` base < the recipe < command-line
overrides (`key.sub=value`, `~key.sub` deletes). Every problem is collected and reported
at once with its file, line and key path.

Read in this order: `recipe` (the `Recipe` and its validation against a registry),
`files` (YAML files and `extends:`), `overrides` (the command line's `key=value`),
`yamlio` (YAML with line numbers).
"""

from kplug.recipe.files import load_recipe, merge
from kplug.recipe.overrides import apply_overrides, parse_override
from kplug.recipe.recipe import (
    COMPONENT_SECTIONS,
    CORE_SECTIONS,
    DEFAULT_SECTIONS,
    LIST_SECTIONS,
    REQUIRED,
    TOP_LEVEL,
    Recipe,
    Section,
)

__all__ = [
    "COMPONENT_SECTIONS",
    "CORE_SECTIONS",
    "DEFAULT_SECTIONS",
    "LIST_SECTIONS",
    "REQUIRED",
    "TOP_LEVEL",
    "Recipe",
    "Section",
    "apply_overrides",
    "load_recipe",
    "merge",
    "parse_override",
]
