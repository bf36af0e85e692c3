"""Registers the `mlflow` callback (`callbacks: [{name: mlflow, tracking_uri: ...}]`)."""

from __future__ import annotations

import kplug
from kplug_tracking.mlflow_logger import MlflowConfig, build_mlflow_logger


@kplug.hookimpl
def register_callbacks(register):
    register(
        "mlflow",
        build_mlflow_logger,
        config=MlflowConfig,
        summary="log the recipe as params and every epoch's metrics to MLflow (optional "
        "extra: pip install kplug[mlflow]); default a local mlruns/ file store",
    )
