"""The set-up sequence every command that builds a recipe's pieces shares: recipe, backend,
context, strategy, data, network (`kplug run`, `kplug plan --build`, `kplug data`, tuners).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from kplug.components import Data
from kplug.context import RunContext
from kplug.data import splits
from kplug.errors import DataError, RunError
from kplug.recipe import Recipe
from kplug.registry import Registry


def load_recipe(
    path: str | os.PathLike,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    registry: Registry | None = None,
) -> Recipe:
    """Load, merge, override and validate a recipe file against `registry` (the loaded
    plugins' by default), then let plugins' `recipe_loaded` see it: once per loaded recipe
    (recipes kplug derives from it, `Recipe.with_overrides`, fire nothing).

    Raises:
        RecipeError: listing every problem, each with file:line and key path.
    """
    from kplug import plugins
    from kplug.recipe import load_recipe as load_file

    loaded = load_file(path, overrides, registry=registry or plugins.registry())
    plugins.plugin_manager().hook.recipe_loaded(recipe=loaded)
    return loaded


def set_up(
    recipe: Recipe,
    registry: Registry | None = None,
    *,
    strategy: bool = True,
    smoke: bool = False,
    argv: list[str] | None = None,
    trust_model: bool = False,
) -> RunContext:
    """Select the recipe's backend and make its `RunContext`, with the strategy built
    unless `strategy=False`.

    The strategy comes first: a multi-worker strategy must start before TensorFlow runs
    anything, and it says where this process writes.
    """
    if registry is None:
        from kplug.plugins import registry as loaded_registry

        registry = loaded_registry()
    use_backend(recipe.backend)
    ctx = RunContext(recipe, registry, smoke=smoke, argv=list(argv or sys.argv),
                     trust_model=trust_model)  # fmt: skip
    if strategy:
        ctx.strategy = ctx.build(recipe.strategy)
    return ctx


def prepare_data(ctx: RunContext) -> Any:
    """Load the data into `ctx.data`, adapted by the recipe's objective; returns the
    objective. Call it in the strategy's scope."""
    ctx.data = load_data(ctx)
    ctx.state["dataset_spec"] = ctx.data.spec  # before the objective adapts it: inference.json
    objective = ctx.build(ctx.recipe.objective)
    ctx.data = objective.adapt(ctx.data, ctx)
    return objective


def use_backend(backend: str) -> None:
    """Select the Keras backend before Keras is imported; refuse a conflicting one or one
    that is not installed."""
    from kplug.backends import require_backend

    require_backend(backend)
    if "keras" in sys.modules:
        import keras

        current = keras.backend.backend()
        if current != backend:
            raise RunError(
                f"the recipe asks for the {backend!r} backend but Keras is already running on "
                f"{current!r} in this process; run it in a new process with "
                f"KERAS_BACKEND={backend}."
            )
        return
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_data(ctx: RunContext) -> Data:
    """Build the dataset and apply the `data:` options (validation split, limit)."""
    options = ctx.recipe.data.options
    data: Data = ctx.build(ctx.recipe.data)
    if not isinstance(data, Data):
        raise TypeError(f"dataset {ctx.recipe.data.name!r} returned {type(data).__name__}, "
                        "not kplug.Data")  # fmt: skip
    if options.validation_split:
        train, validation = splits.split_off(data.train, options.validation_split, ctx.seed)
        data = data.replace(train=train, validation=validation)
    if options.limit:
        data = data.replace(
            **{s: splits.take(getattr(data, s), options.limit)
               for s in ("train", "validation", "test")}
        )  # fmt: skip
    if splits.count(data.train) == 0:
        raise DataError(
            f"dataset {ctx.recipe.data.name!r} has no training examples "
            "(check its filters, data.limit and data.validation_split)."
        )
    return data


# data_report.json keys kplug writes itself; a dataset's `report` may not use them.
RESERVED_REPORT_KEYS = ("examples",)


def data_report(data: Data, dataset: str = "the dataset") -> dict[str, Any]:
    """data_report.json: kplug's split counts (`examples`) and the dataset's `report`.

    Raises:
        DataError: the dataset's report uses a key kplug reserves.
    """
    taken = [key for key in RESERVED_REPORT_KEYS if key in data.report]
    if taken:
        raise DataError(
            f"{dataset}: its report uses {', '.join(map(repr, taken))}, a data_report.json "
            "key kplug writes itself (the split counts); rename it in the dataset's "
            "`report` (e.g. 'source_examples')."
        )
    counts = {s: splits.count(getattr(data, s)) for s in ("train", "validation", "test")}
    return {"examples": counts, **data.report}


def build_network(ctx: RunContext) -> Any:
    """The architecture's network, under gradient checkpointing if `train.remat`."""
    remat = ctx.recipe.train.remat
    if not remat:
        return ctx.build(ctx.recipe.model)
    import keras

    from kplug.training.remat import bind_keyword_arguments, outermost_only

    bind_keyword_arguments()
    with keras.RematScope(mode="full" if remat is True else remat):
        network = ctx.build(ctx.recipe.model)
    if keras.backend.backend() == "tensorflow":
        outermost_only(network)
    return network
