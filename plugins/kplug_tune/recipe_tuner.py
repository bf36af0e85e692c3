"""`RecipeTuner`: a KerasTuner tuner whose trials are kplug runs of one recipe.

Imported only when a search starts: it imports KerasTuner (and so Keras) at the top.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras_tuner
from keras_tuner.engine.base_tuner import BaseTuner

from kplug import KplugError, Recipe, RecipeError, RunDirectory, plugin_manager
from kplug_tune.config import SearchConfig
from kplug_tune.space import override, values_of

# KerasTuner's project (oracle.json, trial_<id>/trial.json) inside the tune directory.
PROJECT = "keras_tuner"
TRIALS = "trials"
RECORD = "result.json"
# A worker whose oracle had no trial for it (IDLE) waits this long before asking again.
IDLE_SECONDS = 1.0


class TrialError(KplugError, keras_tuner.errors.FatalError):
    """A trial that cannot run because of the recipe or the space (an invalid combination,
    a missing metric): KerasTuner stops the search and `kplug tune` exits with code 2."""


class CtrlC:
    """Remembers a SIGINT (Ctrl-C) while trials run, in a `with` block.

    The KeyboardInterrupt is raised at once, as by Python's own handler. But TensorFlow
    turns one raised while it traces a function into another error (a TypeError), which
    KerasTuner records as a failed trial before going on; `RecipeTuner` looks here and
    stops instead. A SIGINT that is ignored (nohup) stays ignored.
    """

    def __init__(self):
        self.pressed = False
        self._previous: Any = None

    def __enter__(self) -> CtrlC:
        self._previous = signal.getsignal(signal.SIGINT)
        if self._previous is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.pressed = True
        raise KeyboardInterrupt


class RecipeTuner(BaseTuner):
    """Runs each trial as `kplug run` would run the recipe with the trial's values: the
    same runner, strategy, data, objective and callbacks.

    Each execution of a trial is a run directory `trials/trial-<id>/<timestamp>/` of the
    tune directory; `trials/trial-<id>/result.json` records its values and metrics.

    Args:
        oracle: the KerasTuner oracle deciding the values (grid, random, Bayesian, Hyperband).
        recipe: the tuned recipe, `search:` section included.
        config: the validated `search:` section.
        metric: the Keras log name trials are judged by (`val_accuracy`).
        directory: the tune directory.
        smoke: run every trial as a smoke run (a few steps of every stage).
        on_trial_end: called as `on_trial_end(trial, oracle)` with each ended KerasTuner
            `Trial` and this tuner's oracle (a gRPC client on a worker): progress display.
    """

    def __init__(
        self,
        oracle: Any,
        *,
        recipe: Recipe,
        config: SearchConfig,
        metric: str,
        directory: Path,
        smoke: bool = False,
        trust_model: bool = False,
        on_trial_end: Callable[[Any, Any], None] | None = None,
    ):
        super().__init__(oracle, directory=str(directory), project_name=PROJECT)
        self.recipe = recipe
        self.config = config
        self.metric = metric
        self.trials_dir = Path(directory) / TRIALS
        self.smoke = smoke
        self.trust_model = trust_model
        self._on_trial_end = on_trial_end
        self._ran_a_trial = True
        self.ctrl_c = CtrlC()

    def pre_create_trial(self) -> None:
        if self.ctrl_c.pressed:  # a Ctrl-C that something swallowed during the last trial
            raise KeyboardInterrupt
        # KerasTuner's loop asks again at once when the oracle answers IDLE (a grid waiting
        # for the last trials of other workers): pause, or a worker spins on gRPC calls.
        if not self._ran_a_trial:
            time.sleep(IDLE_SECONDS)
        self._ran_a_trial = False

    def on_trial_begin(self, trial: Any) -> None:
        self._ran_a_trial = True

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        try:
            return self._run_trial(trial)
        except Exception:
            if self.ctrl_c.pressed:  # whatever TensorFlow made of the interrupt
                raise KeyboardInterrupt from None
            raise

    def _run_trial(self, trial: Any) -> dict[str, float]:
        trial_id = trial.trial_id
        values = values_of(self.config, trial.hyperparameters)
        done = read_record(self.trials_dir, trial_id)
        if done.get("values") == values:
            # Interrupted after its runs ended but before the oracle heard of it: keep them.
            print(f"kplug tune: trial {trial_id} had finished: {shown(values)}", flush=True)
            return done["metrics"]
        print(f"kplug tune: trial {trial_id} starts ({self.tuner_id}): {shown(values)}", flush=True)
        replay, continuation = self._overrides(trial, values)
        started = time.perf_counter()
        executions = [
            self._execute(trial_id, values, [*replay, *continuation], index)
            for index in range(1 if self.smoke else self.config.executions_per_trial)
        ]
        metrics = _mean([execution["metrics"] for execution in executions])
        if self.metric not in metrics:
            reported = ", ".join(sorted(metrics)) or "nothing"
            hint = (
                " (the run has no validation data: set data.validation_split)"
                if self.metric.startswith("val_")
                else ""
            )
            raise TrialError(
                f"trial {trial_id}: the search metric {self.metric!r} was not reported{hint}; "
                f"the runs reported {reported}. Set search.metric to one of them."
            )
        record = {
            "trial": trial_id,
            "worker": self.tuner_id,
            "values": values,
            "overrides": replay,
            "metric": self.metric,
            "value": metrics[self.metric],
            "metrics": metrics,
            "executions": executions,
            "seconds": round(time.perf_counter() - started, 3),
        }
        RunDirectory(self.trials_dir / f"trial-{trial_id}").write_json(RECORD, record)
        return metrics

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        if self._on_trial_end is not None:
            self._on_trial_end(trial, self.oracle)

    def _overrides(self, trial: Any, values: dict[str, Any]) -> tuple[list[str], list[str]]:
        """The recipe overrides that replay this trial from scratch (what best.yaml gets),
        and those that only continue an earlier trial (Hyperband's later rounds)."""
        replay = [override(key, value) for key, value in values.items()]
        stop = self.config.early_stopping
        if stop is not None:
            # The trial's metric is the last epoch's, as metrics.json reports it, so the
            # kept weights must be the last epoch's too.
            replay.append(
                override(
                    "train.early_stopping",
                    {
                        "monitor": self.metric,
                        "patience": stop.patience,
                        "min_delta": stop.min_delta,
                        "restore_best_weights": False,
                    },
                )  # fmt: skip
            )
        tuner_values = trial.hyperparameters.values
        continuation: list[str] = []
        if "tuner/epochs" in tuner_values:  # Hyperband: epochs per round
            epochs = tuner_values["tuner/epochs"]
            replay.append(f"train.epochs={epochs}")
            previous = tuner_values.get("tuner/trial_id")
            if previous:
                first_run = read_record(self.trials_dir, previous)["executions"][0]["run"]
                continuation = [
                    f"train.epochs={epochs - tuner_values['tuner/initial_epoch']}",
                    override("model.init_from", first_run),
                ]
        return replay, continuation

    def _execute(
        self, trial_id: str, values: dict[str, Any], overrides: list[str], index: int
    ) -> dict[str, Any]:
        from kplug import run

        seed = [f"seed={self.recipe.seed + index}"] if index else []
        try:
            recipe = self.recipe.with_overrides(
                ["~search", f"name=trial-{trial_id}", *overrides, *seed]
            )
            # Each trial runs a recipe the user never wrote: plugins' policies see it.
            plugin_manager().hook.recipe_loaded(recipe=recipe)
        except RecipeError as error:
            raise TrialError(
                f"trial {trial_id}: the combination {shown(values)} is not a valid recipe: {error}"
            ) from None
        import keras

        keras.backend.clear_session()  # every trial starts as fresh as a new `kplug run`
        try:
            result = run(recipe, runs_root=self.trials_dir, smoke=self.smoke, argv=sys.argv,
                         trust_model=self.trust_model)  # fmt: skip
        except KplugError as error:
            raise TrialError(f"trial {trial_id} ({shown(values)}): {error}") from None
        return {
            "run": str(result.directory),
            "seed": recipe.seed,
            "metrics": logged_metrics(result.metrics),
        }


def logged_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """A run's final metrics under the names Keras logs them: `val_<name>` for validation,
    `<name>` for training (the last epoch's, as metrics.json has them)."""
    out = {f"val_{k}": float(v) for k, v in metrics.get("validation", {}).items() if _is_num(v)}
    out.update({k: float(v) for k, v in metrics.get("train", {}).items() if _is_num(v)})
    return out


def read_record(trials_dir: Path, trial_id: str) -> dict[str, Any]:
    """A trial's result.json; empty when the trial has not finished."""
    try:
        return RunDirectory(trials_dir / f"trial-{trial_id}").read_json(RECORD)
    except FileNotFoundError:
        return {}


def shown(values: dict[str, Any]) -> str:
    return " ".join(f"{key}={value_text(value)}" for key, value in values.items()) or "(defaults)"


def value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict | bool) or value is None:
        return json.dumps(value)
    return str(value)


def _mean(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = set.intersection(*(set(run) for run in runs))
    return {key: sum(run[key] for run in runs) / len(runs) for key in sorted(keys)}


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
