"""kplug: a plugin-based training framework on Keras 3 and TensorFlow.

Public API::

    import kplug

    recipe = kplug.load_recipe("recipes/mnist_cnn.yaml", ["train.epochs=1"])
    result = kplug.run(recipe)

    @kplug.hookimpl
    def register_architectures(register): ...

Importing kplug imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

from typing import Any

import pluggy

from kplug.components import (
    Cleaner,
    Compressor,
    Data,
    DataSpec,
    Exporter,
    Objective,
    Strategy,
    Tokenizer,
)
from kplug.config import Config, EmptyConfig, component_list, component_ref
from kplug.context import RunContext
from kplug.errors import (
    DataError,
    KplugError,
    PluginError,
    RecipeError,
    RunError,
    RunInterrupted,
    TrainingDivergedError,
)
from kplug.recipe import Recipe, load_recipe

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("kplug")


def run(recipe: Recipe | str, overrides: list[str] | tuple[str, ...] = (), **kwargs: Any):
    """Run a recipe (a `Recipe` or a path) and return a `RunResult`; see `kplug.runner.run`."""
    from kplug.runner import run as run_recipe

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        recipe = recipe.with_overrides(overrides)
    return run_recipe(recipe, **kwargs)


__all__ = [
    "Cleaner",
    "Compressor",
    "Config",
    "Data",
    "DataError",
    "DataSpec",
    "EmptyConfig",
    "Exporter",
    "KplugError",
    "Objective",
    "PluginError",
    "Recipe",
    "RecipeError",
    "RunContext",
    "RunError",
    "RunInterrupted",
    "Strategy",
    "Tokenizer",
    "TrainingDivergedError",
    "component_list",
    "component_ref",
    "hookimpl",
    "load_recipe",
    "run",
]
