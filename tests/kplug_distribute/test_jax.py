"""The JAX strategies train the CNN recipe over 2 host devices (needs the `jax` extra)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from kplug import testing

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("jax") is None,
        reason="JAX is not installed (pip install -e '.[jax]')",
    ),
    pytest.mark.xdist_group("distribute"),
]

LAYOUTS = "{dense.*kernel: [null, model], conv.*kernel: [null, null, null, model]}"
JAX_ENV = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
SHORT = ["backend=jax", "data.limit=256", "train.epochs=1", "train.steps_per_epoch=3",
         "train.verbose=0"]  # fmt: skip


@pytest.mark.parametrize(
    ("strategy", "mesh"),
    [
        (["strategy.name=jax_data_parallel"], {"batch": 2}),
        (["strategy.name=jax_model_parallel", f"strategy.layouts={LAYOUTS}"],
         {"batch": 1, "model": 2}),
    ],
    ids=["data_parallel", "model_parallel"],
)  # fmt: skip
def test_jax_strategy_trains_the_cnn_on_two_devices(tmp_path, strategy, mesh):
    result = testing.cli("run", str(ROOT / "recipes" / "mnist_cnn.yaml"), *SHORT, *strategy,
                         "--runs-dir", str(tmp_path), env=JAX_ENV, timeout=480)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    run = Path(result.stdout.strip().splitlines()[-1])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["backend"] == "jax"
    assert manifest["strategy"]["mesh"] == mesh
    assert len(manifest["strategy"]["devices"]) == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["loss"] > 0 and metrics["train"]["loss"] > 0
