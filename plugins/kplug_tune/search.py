"""`Search`: what the tuner components build; `search(ctx)` runs one recipe's search.

A search runs in one of KerasTuner's roles, chosen by its environment variables:
- alone (no ``KERASTUNER_ORACLE_IP``): the oracle and the trials in this process;
- chief (``KERASTUNER_TUNER_ID=chief``): serves the oracle over gRPC, runs no trial;
- worker (``KERASTUNER_TUNER_ID=tuner<N>``): asks the chief for trials and runs them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import kplug
from kplug import RecipeError, RunError
from kplug_tune.config import SearchConfig

# A smoke search: this many trials at most, each a smoke run.
SMOKE_TRIALS = 2
WORKERS_STATE = "tune.workers"

OracleFactory = Callable[..., Any]


def role() -> str:
    """`alone`, `chief` or `worker`, from KerasTuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "alone"
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if v not in os.environ]
    if missing:
        raise RunError(
            f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} not: a distributed search "
            "needs all three (see docs/tuning.md), or none of them to tune in one process."
        )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


class Search:
    """Runs a recipe's `search:` with one KerasTuner oracle; each trial is a kplug run.

    Args:
        tuner: the registered tuner name (`grid`, `random`, `bayesian`, `hyperband`).
        config: the validated `search:` section.
        make_oracle: `(config, objective, hyperparameters, recipe) -> keras_tuner.Oracle`.
        metric: the metric trials are judged by; `direction`: `min` or `max`
            (see `resolve_metric`).
    """

    def __init__(self, tuner: str, config: SearchConfig, make_oracle: OracleFactory,
                 metric: str, direction: str):  # fmt: skip
        self.tuner = tuner
        self.config = config
        self.make_oracle = make_oracle
        self.metric = metric
        self.direction = direction

    def search(self, ctx: kplug.RunContext) -> dict[str, Any]:
        """Search in `ctx.directory`, continuing what is there; returns the summary that
        results.json holds (empty for a worker). `ctx.state["tune.workers"]`, when set, are
        this machine's worker processes, watched by the chief."""
        import keras_tuner

        from kplug_tune.recipe_tuner import RecipeTuner
        from kplug_tune.results import Progress, Results

        where = role()
        hyperparameters = keras_tuner.HyperParameters()
        self.config.declare(hyperparameters)
        objective = keras_tuner.Objective(self.metric, self.direction)
        oracle = self.make_oracle(self.config, objective, hyperparameters, ctx.recipe)
        if ctx.smoke:
            oracle.max_trials = min(oracle.max_trials or SMOKE_TRIALS, SMOKE_TRIALS)
        results = Results(ctx.directory.path, self.tuner, self.config, self.metric, self.direction)
        total = oracle.max_trials or (self.config.grid_size() if self.tuner == "grid" else None)
        progress = Progress(results, total)
        tuner = RecipeTuner(
            oracle,
            recipe=ctx.recipe,
            config=self.config,
            metric=self.metric,
            directory=ctx.directory.path,
            smoke=ctx.smoke,
            trust_model=ctx.trust_model,
            on_trial_end=progress.report_own if where == "worker" else progress.after_trial,
        )
        if where == "worker":
            with tuner.ctrl_c:
                tuner.search()
            return {}
        progress.resume(oracle)
        try:
            if where == "chief":
                _serve(tuner, oracle, progress, ctx.state.get(WORKERS_STATE))
            else:
                with tuner.ctrl_c:
                    tuner.search(verbose=0)
        except RuntimeError as error:
            if "consecutive failures" not in str(error):
                raise
            raise RunError(
                f"the search stopped: {oracle.max_consecutive_failed_trials} trials in a row "
                f"failed. The last error:\n{error}\nSee train.log in the trial directories "
                f"under {ctx.directory / 'trials'}."
            ) from None
        finally:
            progress.update(oracle)
            summary = results.write(oracle, ctx.recipe)
        return summary


def resolve_metric(config: SearchConfig, ctx: kplug.RunContext) -> tuple[str, str]:
    """The metric trials are judged by and its better direction, checked against what the
    recipe's objective reports where that is known before training."""
    from keras_tuner.engine.metrics_tracking import infer_metric_direction

    objective = ctx.build(ctx.recipe.objective)
    metric = config.metric or objective.monitor
    direction = config.direction
    if direction is None:
        direction = objective.mode if metric == objective.monitor else None
        direction = direction or infer_metric_direction(metric)
    if direction is None:
        raise RecipeError(
            f"{ctx.recipe.source}: search.direction: cannot tell whether a higher or a lower "
            f"{metric} is better; set direction: max or direction: min."
        )
    reported = reported_metrics(objective, ctx)
    if reported is not None and metric not in reported:
        raise RecipeError(
            f"{ctx.recipe.source}: search.metric: objective {ctx.recipe.objective.name!r} does "
            f"not report {metric!r}; it reports {', '.join(sorted(reported))}. Choose one of "
            "them (val_<name> is measured on the validation data)."
        )
    return metric, direction


def reported_metrics(objective: kplug.Objective, ctx: kplug.RunContext) -> set[str] | None:
    """The names Keras will log for an objective that compiles with `loss` and `metrics`;
    None when that is only known after training (the objective compiles itself, or its
    metrics need the data)."""
    if type(objective).compile is not kplug.Objective.compile:
        return None
    try:
        metrics = objective.metrics(ctx)
    except RuntimeError:  # the metrics depend on the data's spec, not loaded yet
        return None
    if not isinstance(metrics, list | tuple):
        return None
    names = {"loss", objective.monitor.removeprefix("val_")}
    for metric in metrics:
        names.add(metric if isinstance(metric, str) else getattr(metric, "name", None)
                  or getattr(metric, "__name__", str(metric)))  # fmt: skip
    return names | {f"val_{name}" for name in names}


def _serve(tuner: Any, oracle: Any, progress: Any, workers: Any) -> None:
    """Serve the oracle to the workers (KerasTuner's chief loop, in a thread) and report
    trials as they end. With local workers, stop once they have all finished, or fail
    as soon as one of them fails."""
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            tuner.search(verbose=0)
        except BaseException as error:  # reported by the main thread
            failure.append(error)

    server = threading.Thread(target=serve, name="kerastuner-chief", daemon=True)
    server.start()
    while server.is_alive():
        server.join(timeout=1.0)
        progress.update(oracle)
        if workers is not None and workers.finished():
            break  # every worker got "stop" from the oracle: all trials have ended
    if failure:
        raise RunError(f"the chief oracle stopped: {type(failure[0]).__name__}: {failure[0]}")
