"""`jax_data_parallel` over two JAX processes on 127.0.0.1 (`jax.distributed`, gloo
collectives on CPU): each process reads its own share of every global batch from the same
prepared (streamed) shards, and the run ends with the weights of one process reading all
of it (issue 16: each host of the JAX strategies reads its own share)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from kplug_distribute.array_batches import array_batches
from kplug_distribute.input_pipeline import make_dataset, tensorflow_order
from kplug_text.token_shards import TokenWindows

from kplug import testing
from kplug.training.models import load_model

pytestmark = pytest.mark.xdist_group("distribute")

# 30 pydoc paragraphs as character windows of 16, streamed from a prepared dataset.
RECIPE = """\
name: streamed-jax
seed: 5
backend: jax
data: {name: pydoc_corpus, document: paragraph, tokenizer: {name: char}, batch_size: 16,
       limit: 30, stream: true}
model: {name: rnn, units: 8, embedding_dim: 8}
objective: {name: causal_lm, sequence_length: 16}
train: {epochs: 2, steps_per_epoch: 4, verbose: 0}
strategy: {name: jax_data_parallel}
"""
JAX_ENV = {"KERAS_BACKEND": "jax"}


def test_two_jax_processes_on_streamed_shards_equal_one_process(tmp_path):
    env = {**JAX_ENV, "KPLUG_DATA_CACHE": str(tmp_path / "cache")}
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(RECIPE)
    result = testing.cli("launch", "--workers", "2", str(recipe), "--runs-dir",
                         str(tmp_path / "runs"), env=env, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    digests = dict(re.findall(r"\[worker (\d)\] kplug: final weights sha256 (\w+)", result.stdout))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], result.stdout[-4000:]
    chief = Path(result.stdout.strip().splitlines()[-1])
    assert json.loads((chief / "data_report.json").read_text())["prepared"]["key"]
    strategy = json.loads((chief / "manifest.json").read_text())["strategy"]
    assert (strategy["processes"], strategy["process"], strategy["replicas"]) == (2, 0, 2)
    assert len(strategy["devices"]) == 2  # one CPU device of each process
    assert not list((tmp_path / "runs").glob("*/*process1*"))  # process 1 kept no run

    single = testing.cli("run", str(recipe), "strategy.name=default", "--runs-dir",
                         str(tmp_path / "single"), env=env, timeout=300)  # fmt: skip
    assert single.returncode == 0, single.stderr[-4000:]
    alone = Path(single.stdout.strip().splitlines()[-1])
    assert json.loads((alone / "data_report.json").read_text())["prepared"]["reused"] is True
    together = load_model(chief).get_weights()
    for a, b in zip(load_model(alone).get_weights(), together, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


class CountingWindows(TokenWindows):
    """Token windows that remember which windows were read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: list[int] = []

    def gather(self, indices):
        self.read.extend(int(i) for i in indices)
        return super().gather(indices)


def test_each_process_reads_only_its_share_of_each_batch():
    # 116 windows in batches of 8: 15 batches an epoch, the last of 4.
    stream = np.arange(500, dtype=np.int32)
    options = {"batch_size": 8, "training": True, "seed": 3, "start_step": 5,
               "epoch_order": tensorflow_order}  # fmt: skip
    whole = array_batches(TokenWindows(stream, 16, 4, count=116), **options)
    windows = [CountingWindows(stream, 16, 4, count=116) for _ in range(2)]
    parts = [array_batches(w, share=(i, 2), **options) for i, w in enumerate(windows)]
    examples = 0
    for step in range(30):  # across two epochs' ends
        x, y = whole[step]
        examples += len(x)
        (x0, y0), (x1, y1) = parts[0][step], parts[1][step]
        np.testing.assert_array_equal(np.concatenate([x0, x1]), x)
        np.testing.assert_array_equal(np.concatenate([y0, y1]), y)
    assert examples == 28 * 8 + 2 * 4
    assert len(windows[0].read) == len(windows[1].read) == examples // 2


def test_tensorflow_order_is_the_order_of_the_tf_data_pipeline():
    examples = np.arange(50)
    split = (examples, examples)
    dataset = make_dataset(split, batch_size=10, training=True, seed=7)
    batches = [x.numpy() for x, _ in dataset.take(10)]
    order = np.concatenate([tensorflow_order(50, 7, 0), tensorflow_order(50, 7, 1)])
    np.testing.assert_array_equal(np.concatenate(batches), order)
    assert not np.array_equal(order[:50], order[50:])  # reshuffled each epoch


@pytest.mark.parametrize(
    ("overrides", "env", "fragments"),
    [
        ([], {"KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "2"},
         ["KERAS_DISTRIBUTION_PROCESS_ID=2", "out of range", "0 to 1"]),
        (["strategy.name=jax_model_parallel"],
         {"KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "0"},
         ["jax_model_parallel runs in one process", "jax_data_parallel"]),
    ],
    ids=["process_id_out_of_range", "model_parallel"],
)  # fmt: skip
def test_bad_multi_process_settings_exit_2(tmp_path, overrides, env, fragments):
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(RECIPE)
    result = testing.cli(
        "run", str(recipe), *overrides, "--runs-dir", str(tmp_path / "runs"), timeout=120,
        env={**JAX_ENV, "KERAS_DISTRIBUTION_JOB_ADDRESSES": "127.0.0.1:1", **env},
    )  # fmt: skip
    testing.assert_user_error(result, *fragments)


def test_launch_refuses_restart_failed_for_jax(tmp_path):
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(RECIPE)
    result = testing.cli("launch", "--workers", "2", "--restart-failed", str(recipe),
                         "--runs-dir", str(tmp_path / "runs"), timeout=120)  # fmt: skip
    testing.assert_user_error(result, "--restart-failed", "jax_data_parallel")
