"""The adversarial objective on JAX: the GAN's stateless train step updates each network
with its own optimizer (and the generator's moving average), and a short `kplug run` of a
GAN recipe on JAX trains, writes its sample grid and checkpoints both optimizers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.xdist_group("gan_jax")

RECIPE = """\
name: tiny-gan-jax
backend: jax
data: {name: mnist, batch_size: 16, limit: 64}
model: {name: dcgan, generator_filters: [16, 8], discriminator_filters: [8, 16]}
objective: {name: adversarial, grid_samples: 16, score_samples: 0, generator_ema: 0.9}
optimizer: {name: adam, learning_rate: 2.0e-4, beta_1: 0.5}
train: {epochs: 1, steps_per_epoch: 3, checkpoint_every: 2, verbose: 0}
"""

DRIVER = """
import json, sys

import keras
import numpy as np
from kplug_gan.gan_model import GAN

from kplug.cli import main

generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                              keras.layers.BatchNormalization(), keras.layers.Reshape((2, 3, 1))])
discriminator = keras.Sequential([keras.Input((2, 3, 1)), keras.layers.Flatten(),
                                  keras.layers.Dropout(0.3),
                                  keras.layers.Dense(1, activation="sigmoid")])
gan = GAN(generator, discriminator, generator_ema=0.75)
gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
before_g = [w.numpy().copy() for w in generator.weights]
before_d = [w.numpy().copy() for w in discriminator.trainable_weights]
real = np.random.default_rng(0).uniform(-1, 1, (8, 2, 3, 1)).astype("float32")
logs = gan.train_on_batch(real, return_dict=True)
after_g = [w.numpy() for w in generator.trainable_weights]
out = {
    "backend": keras.backend.backend(),
    "logs": sorted(logs),
    "iterations": [int(gan.d_optimizer.iterations), int(gan.g_optimizer.iterations)],
    "generator_changed": [not np.allclose(a, w.numpy())
                          for a, w in zip(before_g, generator.weights)],
    "discriminator_changed": [not np.allclose(a, w.numpy())
                              for a, w in zip(before_d, discriminator.trainable_weights)],
    "average_error": max(float(np.abs(m.numpy() - (0.75 * b + 0.25 * a)).max())
                         for b, a, m in zip(before_g, after_g, gan.ema_weights)),
}
out["code"] = main(["run", sys.argv[1], "--runs-dir", sys.argv[2]])
print("RESULT " + json.dumps(out))
"""


def test_the_adversarial_objective_trains_on_jax(tmp_path):
    recipe = tmp_path / "gan.yaml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(recipe), str(tmp_path / "runs")],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(lines[-1][7:])
    assert out["backend"] == "jax" and out["logs"] == ["d_accuracy", "d_loss", "g_loss"]
    assert out["iterations"] == [1, 1]
    # Every weight of both networks moved, the batch norm's moving statistics included.
    assert all(out["generator_changed"]) and all(out["discriminator_changed"])
    assert out["average_error"] <= 1e-6
    assert out["code"] == 0, done.stderr[-3000:]

    (run_dir,) = (tmp_path / "runs" / "tiny-gan-jax").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["backend"] == "jax"
    assert [p.name for p in (run_dir / "samples").iterdir()] == ["epoch_001.png"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["test"]) == {"d_loss", "g_loss", "d_accuracy"}
    assert all(math.isfinite(value) for value in metrics["test"].values())
    # The mid-epoch step checkpoint holds both optimizers' state (the paired optimizer's).
    meta = json.loads((run_dir / "checkpoints" / "step-000000002.json").read_text())
    names = meta["variables"]["optimizer"]
    assert sum(name.endswith("iteration") for name in names) == 2, names
