"""The JAX strategies train the CNN recipe over 2 host devices (JAX is in the dev extra)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from kplug import testing

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("distribute")

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
def test_jax_strategy_trains_the_cnn_on_two_devices(tmp_path, strategy, mesh, default_run):
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
    # The same steps on the same batches as one device: the same weights.
    for name, expected in weights(default_run).items():
        np.testing.assert_allclose(weights(run)[name], expected, atol=1e-5, err_msg=name)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> Path:
    """The recipe of the strategy tests under `default` on JAX, one device."""
    runs = tmp_path_factory.mktemp("default")
    result = testing.cli("run", str(ROOT / "recipes" / "mnist_cnn.yaml"), *SHORT,
                         "--runs-dir", str(runs), env=JAX_ENV, timeout=480)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return Path(result.stdout.strip().splitlines()[-1])


def weights(run: Path) -> dict[str, np.ndarray]:
    """Every weight array of a run's model.keras, by its path in the weights file."""
    with zipfile.ZipFile(run / "model.keras") as archive:
        data = io.BytesIO(archive.read("model.weights.h5"))
    out: dict[str, np.ndarray] = {}
    with h5py.File(data, "r") as file:
        file.visititems(lambda name, item: out.setdefault(name, item[()])
                        if isinstance(item, h5py.Dataset) else None)  # fmt: skip
    assert out, f"no weights in {run / 'model.keras'}"
    return out


def test_model_parallel_layout_that_does_not_divide_the_devices_exits_2(tmp_path):
    # 63 dense units cannot be split over the 2 devices of the model axis.
    result = testing.cli("run", str(ROOT / "recipes" / "mnist_cnn.yaml"), *SHORT,
                         "model.dense_units=63", "strategy.name=jax_model_parallel",
                         "strategy.layouts={dense.*kernel: [null, model]}",
                         "--runs-dir", str(tmp_path), env=JAX_ENV, timeout=480)  # fmt: skip
    testing.assert_user_error(result, "jax_model_parallel", "does not divide",
                              "strategy.layouts")  # fmt: skip
