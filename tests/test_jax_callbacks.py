"""kplug's per-step callbacks make no training step wait for the host on JAX: Keras reads
the steps' logs on its callback thread, never on the training thread, and a NaN loss still
stops the run at its exact step with the last sane checkpoint kept."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("jax_callbacks")

# 160 examples / batch 8 = 20 steps per epoch.
RECIPE = """\
name: async
backend: jax
seed: 3
data: {name: synthetic, shape: [8, 8, 1], num_classes: 3, train_examples: 160,
       validation_examples: 16, test_examples: 16, batch_size: 8}
model: {name: cnn, filters: [4], dense_units: 8}
objective: {name: classification}
train: {epochs: 2, checkpoint_every: 5, keep_checkpoints: 3, verbose: 0}
"""

# Counts, by thread, Keras' conversions of logs that hold device arrays (each one waits for
# the device), and the batch-end calls an `async_safe` probe callback receives.
DRIVER = """
import json, sys, threading

import keras
from keras.src.utils import python_utils

import kplug
from kplug.cli import main
from kplug.plugins import plugin_manager

counts = {"training_thread_conversions": 0, "probe_on_training_thread": 0,
          "probe_elsewhere": 0}
convert = python_utils.pythonify_logs


def counting(logs):
    values = list((logs or {}).values())
    if threading.current_thread() is threading.main_thread() and any(
        keras.ops.is_tensor(v) for v in values
    ):
        counts["training_thread_conversions"] += 1
    return convert(logs)


python_utils.pythonify_logs = counting


class Probe(keras.callbacks.Callback):
    async_safe = True

    def on_train_batch_end(self, batch, logs=None):
        main_thread = threading.current_thread() is threading.main_thread()
        counts["probe_on_training_thread" if main_thread else "probe_elsewhere"] += 1


class ProbePlugin:
    @kplug.hookimpl
    def register_callbacks(self, register):
        register("probe", lambda config, ctx: Probe(), summary="test probe")


plugin_manager().register(ProbePlugin(), name="probe")
code = main(["run", sys.argv[1], "--runs-dir", sys.argv[2], "callbacks=[{name: probe}]"])
print("RESULT " + json.dumps({"code": code, **counts}))
"""


def _run_driver(recipe: Path, runs: Path) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(recipe), str(runs)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    return {**json.loads(lines[-1][7:]), "stderr": done.stderr}


def test_a_default_jax_run_reads_no_step_logs_on_the_training_thread(tmp_path):
    recipe = tmp_path / "async.yaml"
    recipe.write_text(RECIPE)
    result = _run_driver(recipe, tmp_path / "runs")
    assert result["code"] == 0, result["stderr"][-3000:]
    steps = 2 * 20
    # Keras dispatched every step's batch-end hooks (kplug's and the probe's) to its thread.
    assert result["probe_elsewhere"] == steps and result["probe_on_training_thread"] == 0
    # The training thread converts only epoch-level logs (epoch ends, validation, the
    # evaluation): a handful per epoch, not one per step.
    assert result["training_thread_conversions"] <= 4 * 2, result
    # The step checkpoints were still taken at their exact steps, with their losses.
    (run_dir,) = (tmp_path / "runs" / "async").iterdir()
    metas = [json.loads(p.read_text()) for p in (run_dir / "checkpoints").glob("step-*.json")]
    assert sorted(m["global_step"] for m in metas) == [30, 35, 40]
    middle = next(m for m in metas if m["global_step"] == 35)
    assert middle["step_in_epoch"] == 15 and middle["loss"] > 0 and middle["sane"]


def test_a_nan_loss_on_jax_stops_at_its_exact_step_and_keeps_a_sane_checkpoint(tmp_path):
    recipe = tmp_path / "nan.yaml"
    recipe.write_text(
        RECIPE.replace("name: async", "name: nan").replace(
            "checkpoint_every: 5, keep_checkpoints: 3", "checkpoint_every: 1, keep_checkpoints: 2"
        )
        + "optimizer: {name: sgd, learning_rate: 1.0e+30}\n"
    )
    result = _run_driver(recipe, tmp_path / "runs")
    err = result["stderr"]
    assert result["code"] == 3, err[-3000:]
    assert result["probe_on_training_thread"] == 0  # still off the training thread
    found = re.search(r"the loss became (nan|inf) at step (\d+) .*last finite loss was \S+ at "
                      r"step (\d+)", err)  # fmt: skip
    assert found and "Traceback" not in err, err[-3000:]
    step = int(found.group(2))
    assert int(found.group(3)) == step - 1
    (run_dir,) = (tmp_path / "runs" / "nan").iterdir()
    saved = {int(p.stem.split("-")[1]): json.loads(p.read_text())
             for p in (run_dir / "checkpoints").glob("step-*.json")}  # fmt: skip
    # No checkpoint of a diverged state, though the training thread ran ahead of the loss.
    assert saved and max(saved) < step, (step, sorted(saved))
    sane = re.search(r"The last checkpoint with a sane loss is kept: \S+ \(step (\d+)", err)
    assert sane and saved[int(sane.group(1))]["sane"], err[-3000:]
    # The checkpoint whose weights gave the first non-finite loss is marked not sane.
    if step - 1 in saved:
        assert not saved[step - 1]["sane"]
