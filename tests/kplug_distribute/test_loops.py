"""Mirrored `fit` and kplug's distributed loop train exactly like the default strategy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kplug
from kplug import testing
from kplug.training.models import load_model

RECIPE = {
    "data": {"name": "digits", "batch_size": 32, "limit": 128, "validation_split": 0.25},
    "model": {"name": "cnn", "filters": [8], "padding": "same", "dense_units": 16},
    "objective": {"name": "classification"},
    "train": {"epochs": 2, "steps_per_epoch": 3, "verbose": 0},
}


class EventRecorder:
    """A plugin whose callback records every hook call with its step or epoch."""

    def __init__(self):
        self.events: list[tuple[str, object]] = []

    @kplug.hookimpl
    def register_callbacks(self, register):
        import keras

        events = self.events

        class Record(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                events.append(("train_begin", None))

            def on_epoch_begin(self, epoch, logs=None):
                events.append(("epoch_begin", epoch))

            def on_train_batch_begin(self, batch, logs=None):
                events.append(("batch_begin", batch))

            def on_train_batch_end(self, batch, logs=None):
                events.append(("batch_end", (batch, sorted(logs))))

            def on_test_begin(self, logs=None):
                events.append(("test_begin", None))

            def on_epoch_end(self, epoch, logs=None):
                events.append(("epoch_end", (epoch, sorted(logs))))

            def on_train_end(self, logs=None):
                events.append(("train_end", sorted(logs or {})))

        register("record_events", lambda config, ctx: Record())


def _weights(directory) -> list[np.ndarray]:
    return load_model(Path(directory)).get_weights()


def test_distributed_loop_is_indistinguishable_from_fit(tmp_path):
    """The multi_worker strategy (one local worker: kplug's loop) against `fit`: the
    same callback calls, history, CSV columns and weights; only the manifest differs."""
    runs = {}
    for strategy in ("default", "multi_worker"):
        recorder = EventRecorder()
        with testing.registered(recorder, name=f"recorder-{strategy}"):
            result = testing.smoke_run(
                {**RECIPE, "strategy": {"name": strategy}, "callbacks": ["record_events"]},
                tmp_path / strategy, smoke=False,
            )  # fmt: skip
        runs[strategy] = (result, recorder.events)
    (fit, fit_events), (loop, loop_events) = runs["default"], runs["multi_worker"]
    assert loop_events == fit_events
    assert ("batch_end", (2, ["accuracy", "loss"])) in fit_events
    csv = [(r.directory / "metrics.csv").read_text().splitlines()[0] for r in (fit, loop)]
    assert csv[0] == csv[1]
    for key in ("train", "validation", "test"):
        assert fit.metrics[key].keys() == loop.metrics[key].keys()
        for name, value in fit.metrics[key].items():
            assert loop.metrics[key][name] == pytest.approx(value, abs=1e-4), (key, name)
    for a, b in zip(_weights(fit.directory), _weights(loop.directory), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    manifests = [r.directory.manifest()["strategy"] for r in (fit, loop)]
    assert [m["training_loop"] for m in manifests] == ["fit", "distributed_loop"]


def test_initial_epoch_and_early_stopping_in_the_loop(tmp_path):
    from kplug.context import RunContext
    from kplug.plugins import registry
    from kplug.rundir import RunDirectory
    from kplug.runner import load_data
    from kplug.training.trainer import Trainer

    recipe = testing.recipe({**RECIPE, "strategy": {"name": "multi_worker"}, "train": {
        **RECIPE["train"], "epochs": 5,
        "early_stopping": {"monitor": "loss", "patience": 0, "min_delta": 100.0}}})  # fmt: skip
    ctx = RunContext(recipe, registry(), RunDirectory.create(tmp_path, "loop"))
    ctx.strategy = ctx.build(recipe.strategy)
    with ctx.strategy.scope():
        ctx.data = load_data(ctx)
        objective = ctx.build(recipe.objective)
        ctx.model = objective.build(ctx.build(recipe.model), ctx)
        objective.compile(ctx.model, ctx)
    cbs = Trainer(ctx, objective).callbacks
    history = ctx.strategy.fit(ctx.model, ctx.data, batch_size=32, epochs=5, initial_epoch=2,
                               steps_per_epoch=3, callbacks=cbs, verbose=0)  # fmt: skip
    # Epoch 3 (index 2) runs; early stopping (no improvement of 100) stops after epoch 4.
    assert len(history["loss"]) == 2
    assert int(ctx.model.optimizer.iterations.numpy()) == 6


@pytest.mark.xdist_group("distribute")
def test_mirrored_on_two_cpus_equals_default(tmp_path):
    """Mirrored over 2 logical CPU devices (in a new process: the split must happen before
    TensorFlow starts) reaches the default strategy's weights for the same global batch."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"name": "mirror", **RECIPE}))
    mirrored = testing.cli("run", str(recipe), "strategy.name=mirrored",
                           "strategy.logical_cpu_devices=2",
                           "--runs-dir", str(tmp_path / "m"))  # fmt: skip
    assert mirrored.returncode == 0, mirrored.stderr[-3000:]
    mirrored_dir = Path(mirrored.stdout.strip().splitlines()[-1])
    manifest = json.loads((mirrored_dir / "manifest.json").read_text())["strategy"]
    assert manifest["replicas"] == 2 and len(manifest["devices"]) == 2
    assert manifest["training_loop"] == "fit"
    default = testing.smoke_run(kplug.load_recipe(recipe), tmp_path / "d", smoke=False)
    for a, b in zip(_weights(default.directory), _weights(mirrored_dir), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_logical_cpu_devices_after_tensorflow_started_is_a_user_error(tmp_path):
    import tensorflow as tf

    tf.config.list_logical_devices()  # TensorFlow has started in this process
    have = len(tf.config.list_logical_devices("CPU"))
    recipe = testing.recipe({**RECIPE, "strategy": {"name": "mirrored",
                                                     "logical_cpu_devices": have + 1}})  # fmt: skip
    with pytest.raises(kplug.RunError, match="TensorFlow already started in this process"):
        testing.smoke_run(recipe, tmp_path)


def test_one_device_trains_on_the_named_device(tmp_path):
    result = testing.smoke_run(
        {**RECIPE, "strategy": {"name": "one_device", "device": "/cpu:0"}}, tmp_path
    )
    strategy = result.directory.manifest()["strategy"]
    assert strategy["devices"] == ["/job:localhost/replica:0/task:0/device:CPU:0"]
    assert strategy["replicas"] == 1 and result.metrics["train"]["loss"] > 0
