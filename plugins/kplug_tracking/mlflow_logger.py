"""`mlflow`: an MLflow run per kplug run, with the resolved recipe as params, each epoch's
metrics (train and validation) by step, and the final test metrics and run directory.

MLflow is an optional dependency (`pip install kplug[mlflow]`, MLflow's `mlflow-skinny`
client). The default store is a local `mlruns/` folder, MLflow's file store, which
MLflow 3 keeps in maintenance mode behind `MLFLOW_ALLOW_FILE_STORE=true` (set here for
file stores only); give `tracking_uri` a server (`http://...`) or database to use one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import Field

import kplug

MAX_PARAMS_PER_CALL = 100  # MLflow's log_batch limit


class MlflowConfig(kplug.Config):
    tracking_uri: str | None = Field(
        None, description="an MLflow tracking URI; null: a file store in ./mlruns"
    )
    experiment: str | None = Field(None, description="the experiment; null: the recipe's name")


def build_mlflow_logger(config: MlflowConfig, ctx: kplug.RunContext) -> Any:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise kplug.RecipeError(
            "callbacks: mlflow needs MLflow's client: pip install 'kplug[mlflow]' (or "
            "mlflow-skinny), or remove the mlflow callback."
        ) from None
    return _logger_class()(config, ctx)


def tracking_uri(config: MlflowConfig) -> str:
    return config.tracking_uri or Path("mlruns").resolve().as_uri()


def _logger_class():
    import keras

    class MlflowLogger(keras.callbacks.Callback):
        """Creates the MLflow run at the start of training, logs each epoch's metrics and
        ends the run with its status when training ends."""

        def __init__(self, config: MlflowConfig, ctx: kplug.RunContext):
            super().__init__()
            self.uri = tracking_uri(config)
            self.experiment = config.experiment or ctx.recipe.name
            self.ctx = ctx
            self.run_id: str | None = None

        def on_train_begin(self, logs=None):
            import os

            import yaml
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient

            if self.uri.startswith("file:"):
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            self.client = MlflowClient(self.uri)
            found = self.client.get_experiment_by_name(self.experiment)
            experiment = (
                found.experiment_id if found else self.client.create_experiment(self.experiment)
            )
            directory = str(self.ctx.directory) if self.ctx.directory else ""
            run = self.client.create_run(
                experiment, run_name=Path(directory).name or None,
                tags={"kplug.run_dir": directory, "kplug.recipe": self.ctx.recipe.name},
            )  # fmt: skip
            self.run_id = run.info.run_id
            recipe = flatten(yaml.safe_load(self.ctx.recipe.to_yaml()))
            params = [Param(k, json.dumps(v) if not isinstance(v, str) else v)
                      for k, v in recipe.items()]  # fmt: skip
            for start in range(0, len(params), MAX_PARAMS_PER_CALL):
                chunk = params[start : start + MAX_PARAMS_PER_CALL]
                self.client.log_batch(self.run_id, params=chunk)

        def on_epoch_end(self, epoch, logs=None):
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            metrics = [Metric(k, float(v), now, epoch) for k, v in (logs or {}).items()
                       if isinstance(v, int | float) or hasattr(v, "__float__")]  # fmt: skip
            if metrics and self.run_id:
                self.client.log_batch(self.run_id, metrics=metrics)

        def on_train_end(self, logs=None):
            if self.run_id:
                self.client.set_terminated(self.run_id, "FINISHED")

    return MlflowLogger


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """A resolved recipe as dotted keys (`optimizer.learning_rate`), lists kept whole."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out
