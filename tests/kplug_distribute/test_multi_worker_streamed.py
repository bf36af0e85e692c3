"""Streamed token shards under `multi_worker`: two worker processes on 127.0.0.1 read their
share of each global batch from the same memory-mapped shards and end with the weights of
one process reading all of it (issue 16: each worker reads its own share)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import kplug
from kplug import testing
from kplug.training.models import load_model

pytestmark = pytest.mark.xdist_group("distribute")

# 30 pydoc paragraphs as character windows of 16, streamed from a prepared dataset.
RECIPE = """\
name: streamed-mw
seed: 5
data: {name: pydoc_corpus, document: paragraph, tokenizer: {name: char}, batch_size: 16,
       limit: 30, stream: true}
model: {name: rnn, units: 8, embedding_dim: 8}
objective: {name: causal_lm, sequence_length: 16}
train: {epochs: 2, steps_per_epoch: 4, verbose: 0}
strategy: {name: multi_worker, communication: ring}
"""


def test_two_workers_on_streamed_shards_equal_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("KPLUG_DATA_CACHE", str(tmp_path / "cache"))
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(RECIPE)
    runs = tmp_path / "runs"
    result = testing.cli("launch", "--workers", "2", str(recipe), "--runs-dir", str(runs),
                         timeout=480)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    digests = dict(re.findall(r"\[worker (\d)\] kplug: final weights sha256 (\w+)", result.stdout))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], result.stdout[-4000:]
    chief = Path(result.stdout.strip().splitlines()[-1])
    assert json.loads((chief / "data_report.json").read_text())["prepared"]["key"]
    strategy = json.loads((chief / "manifest.json").read_text())["strategy"]
    assert (strategy["training_loop"], strategy["workers"]) == ("distributed_loop", 2)

    single = testing.smoke_run(
        kplug.load_recipe(recipe, ["strategy.name=default", "~strategy.communication"]),
        tmp_path / "single", smoke=False,
    )  # fmt: skip
    report = json.loads((single.directory.path / "data_report.json").read_text())
    assert report["prepared"]["reused"] is True  # the workers' shards, not a new preparation
    together = load_model(chief).get_weights()
    for a, b in zip(load_model(single.directory.path).get_weights(), together, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
