"""KerasTuner's four oracles, made from a tuner's config: they decide which values to try."""

from __future__ import annotations

from typing import Any

from kplug import Recipe, RecipeError
from kplug_tune.config import BayesianConfig, GridConfig, HyperbandConfig, RandomConfig


def grid(config: GridConfig, objective: Any, hyperparameters: Any, recipe: Recipe) -> Any:
    from kplug_tune.resumable_grid_oracle import ResumableGridSearchOracle

    return ResumableGridSearchOracle(
        objective=objective, max_trials=config.max_trials, hyperparameters=hyperparameters
    )


def random(config: RandomConfig, objective: Any, hyperparameters: Any, recipe: Recipe) -> Any:
    import keras_tuner

    return keras_tuner.oracles.RandomSearchOracle(
        objective=objective,
        max_trials=config.max_trials,
        seed=_seed(config.seed, recipe),
        hyperparameters=hyperparameters,
    )


def bayesian(config: BayesianConfig, objective: Any, hyperparameters: Any, recipe: Recipe) -> Any:
    import keras_tuner

    return keras_tuner.oracles.BayesianOptimizationOracle(
        objective=objective,
        max_trials=config.max_trials,
        num_initial_points=config.num_initial_points,
        alpha=config.alpha,
        beta=config.beta,
        seed=_seed(config.seed, recipe),
        hyperparameters=hyperparameters,
    )


def hyperband(config: HyperbandConfig, objective: Any, hyperparameters: Any, recipe: Recipe) -> Any:
    import keras_tuner

    max_epochs = config.max_epochs or recipe.train.epochs
    if not max_epochs:
        raise RecipeError(
            f"{recipe.source}: search.max_epochs: hyperband needs epochs to share out, and "
            "train.epochs is 0; set search.max_epochs or train.epochs."
        )
    return keras_tuner.oracles.HyperbandOracle(
        objective=objective,
        max_epochs=max_epochs,
        factor=config.factor,
        hyperband_iterations=config.hyperband_iterations,
        seed=_seed(config.seed, recipe),
        hyperparameters=hyperparameters,
    )


def _seed(seed: int | None, recipe: Recipe) -> int:
    # KerasTuner draws a random seed for a falsy one: 0 would not be reproducible.
    return (recipe.seed if seed is None else seed) or 1
