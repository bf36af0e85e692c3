"""kplug: a plugin-based training framework on Keras 3 and TensorFlow.

Public API::

    import kplug

    recipe = kplug.load_recipe("recipes/mnist_cnn.yaml", ["train.epochs=1"])
    result = kplug.run(recipe)

    @kplug.hookimpl
    def register_architectures(register): ...

Importing kplug imports neither TensorFlow nor Keras: names whose modules import more
(NumPy, the run pipeline) load on first use, through the module's `__getattr__`.

Plugins import only `kplug` and `kplug.testing`; docs/api.md lists every public name and
says which are stable (API_VERSION).
"""

from __future__ import annotations

from typing import Any

import pluggy

from kplug.components import (
    Compressor,
    Data,
    DataSpec,
    Exporter,
    Objective,
    Strategy,
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
from kplug.recipe import Recipe, apply_overrides
from kplug.recipe.yamlio import dump as dump_yaml
from kplug.recipe.yamlio import parse as parse_yaml
from kplug.registry import RecipeSection

__version__ = "0.1.0"

API_VERSION = "1.0"

hookimpl = pluggy.HookimplMarker("kplug")
hookspec = pluggy.HookspecMarker("kplug")

# Public name -> (module, name there), imported on first use: these modules import NumPy
# or the run pipeline, which `kplug list` must not pay for.
_LAZY = {
    "BASE_LAYERS_KEY": ("kplug.training.phases", "BASE_LAYERS_KEY"),
    "RunDirectory": ("kplug.rundir", "RunDirectory"),
    "RunResult": ("kplug.runner", "RunResult"),
    "SMOKE_STEPS": ("kplug.runner", "SMOKE_STEPS"),
    "add_recipe_arguments": ("kplug.cli.common", "add_recipe_arguments"),
    "add_trust_model_argument": ("kplug.cli.common", "add_trust_model_argument"),
    "count_examples": ("kplug.data.splits", "count"),
    "custom_objects": ("kplug.training.models", "custom_objects"),
    "data_cache_key": ("kplug.data.cache", "content_key"),
    "default_runs_root": ("kplug.rundir", "default_runs_root"),
    "file_identity": ("kplug.data.cache", "file_identity"),
    "find_prepared": ("kplug.data.cache", "find_prepared"),
    "format_table": ("kplug.cli.common", "table"),
    "is_array_split": ("kplug.data.splits", "is_arrays"),
    "latest_completed_run": ("kplug.rundir", "latest_completed_run"),
    "load_recipe": ("kplug.stages", "load_recipe"),
    "library_versions": ("kplug.runner", "versions"),
    "load_model": ("kplug.training.models", "load_model"),
    "mark_prepared": ("kplug.data.cache", "mark_complete"),
    "loaded_registry": ("kplug.plugins", "registry"),
    "plugin_manager": ("kplug.plugins", "plugin_manager"),
    "preparing_dataset": ("kplug.data.cache", "preparing"),
    "recipe_from_args": ("kplug.cli.common", "load"),
    "resolve_init_path": ("kplug.training.initialize", "resolve_init_path"),
    "run_objective": ("kplug.rundir", "run_objective"),
    "save_model": ("kplug.training.models", "save_model"),
    "select_examples": ("kplug.data.splits", "select"),
    "set_up": ("kplug.stages", "set_up"),
    "use_backend": ("kplug.stages", "use_backend"),
    "utc_now": ("kplug.rundir", "utc_now"),
    "write_durably": ("kplug.data.cache", "write_durably"),
}


# Helpers the built-in plugins need today whose names or signatures may still change within
# API 1.x (docs/api.md lists them apart from the stable names).
_PROVISIONAL = frozenset({*_LAZY, "apply_overrides", "dump_yaml", "parse_yaml"} - {"load_recipe"})


# What each public constant means (constants carry no docstring; docs/api.md shows these).
_CONSTANT_DOCS = {
    "API_VERSION": "the plugin API this kplug offers, 'MAJOR.MINOR' (see `require_api`)",
    "BASE_LAYERS_KEY": "the `ctx.state` key under which an architecture lists its "
    "pretrained base layers, which `model.freeze: [base]` freezes",
    "SMOKE_STEPS": "steps per epoch of a `--smoke` run; components that run their own "
    "loop stop after this many steps too",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'kplug' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def require_api(version: str) -> None:
    """Fail with a `PluginError` unless this kplug offers plugin API `version` ("MAJOR.MINOR").

    A plugin calls it at import time (`kplug.require_api("1.0")`): the same major version
    and at least the minor version it was written against.
    """
    try:
        major, minor = (int(part) for part in version.split("."))
    except ValueError:
        raise PluginError(
            f"kplug.require_api({version!r}): give the API version as 'MAJOR.MINOR', e.g. "
            f"{API_VERSION!r}."
        ) from None
    have_major, have_minor = (int(part) for part in API_VERSION.split("."))
    if major != have_major or minor > have_minor:
        raise PluginError(
            f"this plugin needs kplug plugin API {version}, but kplug {__version__} offers "
            f"API {API_VERSION}; install a kplug version with API {major}.x (x >= {minor}) "
            "or a version of the plugin written for this one."
        )


def run(recipe: Recipe | str, overrides: list[str] | tuple[str, ...] = (), **kwargs: Any):
    """Run a recipe (a `Recipe` or a path) and return a `RunResult`; see `kplug.runner.run`."""
    from kplug.runner import run as run_recipe
    from kplug.stages import load_recipe

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        recipe = recipe.with_overrides(overrides)
    return run_recipe(recipe, **kwargs)


__all__ = [
    "API_VERSION",
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
    "RecipeSection",
    "RunContext",
    "RunError",
    "RunInterrupted",
    "Strategy",
    "TrainingDivergedError",
    "component_list",
    "component_ref",
    "hookimpl",
    "hookspec",
    "require_api",
    "run",
    "apply_overrides",
    "dump_yaml",
    "parse_yaml",
    *_LAZY,
]
