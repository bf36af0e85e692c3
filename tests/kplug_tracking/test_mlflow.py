"""The `mlflow` callback against a real local MLflow file store."""

from __future__ import annotations

import pytest

from kplug import testing
from kplug.runner import run

mlflow = pytest.importorskip("mlflow", reason="pip install 'kplug[mlflow]'")


def test_mlflow_logs_the_recipe_and_every_epoch(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    store = (tmp_path / "mlruns").as_uri()
    recipe = testing.recipe({
        "name": "digits-mlflow",
        "data": {"name": "digits", "batch_size": 16, "limit": 48, "validation_split": 0.25},
        "model": {"name": "cnn", "filters": [4], "dense_units": 8},
        "objective": {"name": "classification"},
        "train": {"epochs": 2},
        "callbacks": [{"name": "mlflow", "tracking_uri": store, "experiment": "kplug-test"}],
    })  # fmt: skip
    result = run(recipe, runs_root=tmp_path / "runs", argv=["test"])
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("kplug-test")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED"
    assert logged.data.tags["kplug.run_dir"] == str(result.directory)
    assert logged.data.params["model.name"] == "cnn"
    assert logged.data.params["train.epochs"] == "2"
    history = client.get_metric_history(logged.info.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1]
    csv_rows = (result.directory / "metrics.csv").read_text().splitlines()
    last_val_loss = float(csv_rows[-1].split(",")[csv_rows[0].split(",").index("val_loss")])
    assert history[-1].value == pytest.approx(last_val_loss, rel=1e-6)
