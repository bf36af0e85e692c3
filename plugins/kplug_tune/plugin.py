"""Registers the KerasTuner tuners, the `kplug tune` command, and checks `search:` spaces
against their recipe when a recipe is loaded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kplug
from kplug_tune import command, oracles
from kplug_tune.config import (
    BayesianConfig,
    GridConfig,
    HyperbandConfig,
    RandomConfig,
    SearchConfig,
)
from kplug_tune.space import check_against_recipe


def _tuner(name: str, make_oracle: Callable[..., Any]) -> Callable[..., Any]:
    def build(config: SearchConfig, ctx: kplug.RunContext) -> Any:
        from kplug_tune.search import Search, resolve_metric

        # The metric is checked against the objective here, before a directory exists.
        return Search(name, config, make_oracle, *resolve_metric(config, ctx))

    return build


@kplug.hookimpl
def add_hookspecs(plugin_manager):
    from kplug_tune import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@kplug.hookimpl
def component_kinds():
    from kplug_tune.hookspecs import KINDS

    return KINDS


@kplug.hookimpl
def register_tuners(register):
    register(
        "grid",
        _tuner("grid", oracles.grid),
        config=GridConfig,
        summary="every combination of the space, in order (KerasTuner GridSearch)",
    )
    register(
        "random",
        _tuner("random", oracles.random),
        config=RandomConfig,
        summary="max_trials random combinations (KerasTuner RandomSearch)",
    )
    register(
        "bayesian",
        _tuner("bayesian", oracles.bayesian),
        config=BayesianConfig,
        summary="a Gaussian process proposes each next trial (KerasTuner BayesianOptimization)",
    )
    register(
        "hyperband",
        _tuner("hyperband", oracles.hyperband),
        config=HyperbandConfig,
        summary="many short trials, the best continued longer (KerasTuner Hyperband)",
    )


@kplug.hookimpl
def register_commands(register):
    register(
        "tune",
        command.configure,
        summary="search a recipe's search: space with KerasTuner; resumable, distributed",
    )


@kplug.hookimpl
def recipe_sections() -> dict[str, kplug.RecipeSection]:
    search = kplug.RecipeSection("tuner", name_key="tuner", summary="the search of `kplug tune`")
    return {"search": search}


@kplug.hookimpl
def recipe_loaded(recipe: kplug.Recipe) -> None:
    search = recipe.section("search")
    if search is not None and isinstance(search.config, SearchConfig):
        check_against_recipe(recipe, search.config)
