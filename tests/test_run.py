"""The runner and the run directory: what a run writes, and that it never overwrites."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from kplug import KplugError, testing
from kplug.rundir import RunDirectory

TINY = {
    "data": {"name": "synthetic", "shape": [8, 8, 1], "num_classes": 3, "train_examples": 96,
             "validation_examples": 32, "test_examples": 32, "batch_size": 16},
    "model": {"name": "cnn", "filters": [4], "dense_units": 8},
    "objective": {"name": "classification"},
    "train": {"epochs": 2},
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return testing.smoke_run(TINY, tmp_path_factory.mktemp("runs"), smoke=False)


def test_run_directory_layout(tiny_run):
    d = tiny_run.directory
    assert d.path.parent.name == "test"  # runs/<name>/<UTC timestamp>
    assert d.path.name.endswith("Z")
    for name in ("recipe.resolved.yaml", "manifest.json", "metrics.csv", "metrics.json",
                 "model.keras", "train.log", "data_report.json"):  # fmt: skip
        assert (d / name).is_file(), name


def test_manifest(tiny_run):
    manifest = tiny_run.directory.manifest()
    assert manifest["status"] == "completed"
    assert manifest["seed"] == 42
    for lib in ("kplug", "python", "tensorflow", "keras", "keras-hub"):  # keras-hub: an extra
        assert manifest["versions"][lib], lib
    assert manifest["plugins"]["vision"]
    assert manifest["started"] <= manifest["finished"]
    assert manifest["command"] == ["kplug", "test"]
    assert set(manifest["timings"]) >= {"data", "build", "fit", "evaluate", "save"}


def test_metrics(tiny_run):
    metrics = tiny_run.directory.read_json("metrics.json")
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert metrics["test"]["loss"] > 0
    assert metrics["epochs"] == 2
    rows = (tiny_run.directory / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,") and "val_accuracy" in rows[0]
    assert len(rows) == 3  # header + one row per epoch
    log = (tiny_run.directory / "train.log").read_text()
    assert "epoch 2/2:" in log


def test_resolved_recipe_reruns(tiny_run, tmp_path):
    from kplug import load_recipe

    resolved = yaml.safe_load((tiny_run.directory / "recipe.resolved.yaml").read_text())
    assert resolved["train"]["epochs"] == 2 and resolved["model"]["kernel_size"] == 3
    assert load_recipe(tiny_run.directory / "recipe.resolved.yaml").resolved() == resolved


def test_saved_model_predicts_like_the_run(tiny_run):
    from kplug.training.models import load_model

    model = load_model(tiny_run.directory.path)
    x = np.zeros((1, 8, 8, 1), "float32")
    assert model.predict(x, verbose=0).shape == (1, 3)


def test_existing_run_directories_are_never_reused(tmp_path):
    first = RunDirectory.create(tmp_path, "same")
    (first / "marker").write_text("keep")
    second = RunDirectory.create(tmp_path, "same")
    assert first.path != second.path
    assert (first / "marker").read_text() == "keep"


def test_atomic_json_write(tmp_path):
    d = RunDirectory.create(tmp_path, "atomic")
    d.write_json("a.json", {"x": np.float32(1.5), "y": np.arange(2)})
    assert json.loads((d / "a.json").read_text()) == {"x": 1.5, "y": [0, 1]}
    assert [p.name for p in d.path.iterdir()] == ["a.json"]  # no temporary left behind


def test_failed_run_records_the_error(tmp_path):
    bad = {**TINY, "model": {"name": "cnn", "filters": [4, 4, 4, 4], "pool_size": 4}}
    with pytest.raises(Exception):  # noqa: B017  (Keras' own shape error)
        testing.smoke_run(bad, tmp_path)
    (run,) = (tmp_path / "test").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"]


def test_cli_prints_run_directory_last(tmp_path, minimal_recipe):
    result = testing.cli("run", str(minimal_recipe), "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert (tmp_path / "runs" / "tiny") in RunDirectory(last).path.parents
    assert (RunDirectory(last) / "model.keras").is_file()


def test_init_from_a_run_directory(tiny_run, tmp_path):
    from kplug.training.models import load_model

    result = testing.smoke_run(
        {**TINY, "model": {**TINY["model"], "init_from": str(tiny_run.directory.path)},
         "train": {"epochs": 0}},
        tmp_path,
    )  # fmt: skip
    report = result.directory.read_json("init_from.json")
    assert set(report["loaded"]) == {"conv1", "dense1", "logits"} and not report["skipped"]
    before = load_model(tiny_run.directory.path).get_layer("conv1").get_weights()[0]
    after = load_model(result.directory.path).get_layer("conv1").get_weights()[0]
    np.testing.assert_array_equal(before, after)  # epochs: 0 only evaluates
    assert result.metrics["test"]["accuracy"] == pytest.approx(tiny_run.metrics["test"]["accuracy"])


def test_init_from_keeps_mismatched_layers_fresh(tiny_run, tmp_path):
    recipe = {**TINY, "data": {**TINY["data"], "num_classes": 5},
              "model": {**TINY["model"], "init_from": str(tiny_run.directory.path)}}  # fmt: skip
    result = testing.smoke_run(recipe, tmp_path)
    report = result.directory.read_json("init_from.json")
    assert "logits" in report["skipped"] and "conv1" in report["loaded"]
    strict = {**recipe, "model": {**recipe["model"], "init_strict": True}}
    with pytest.raises(KplugError, match="layers not initialized: logits"):
        testing.smoke_run(strict, tmp_path)


def test_init_from_missing_path(tmp_path):
    recipe = {**TINY, "model": {**TINY["model"], "init_from": str(tmp_path / "nope")}}
    with pytest.raises(KplugError, match="does not exist"):
        testing.smoke_run(recipe, tmp_path)


def test_init_from_a_run_name_takes_the_newest_completed_run(tiny_run, tmp_path):
    from kplug.training.initialize import resolve_init_path

    name_dir = tiny_run.directory.path.parent
    assert resolve_init_path(str(name_dir)) == tiny_run.directory / "model.keras"
    with pytest.raises(KplugError, match="no completed run inside"):
        resolve_init_path(str(tmp_path))
