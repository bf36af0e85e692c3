"""Exact-step resume on streamed data: a `causal_lm` run reading memory-mapped token
shards, SIGKILLed in the middle of an epoch and resumed, ends with the weights of an
uninterrupted run (as tests/test_resume.py checks for in-memory data)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_resume import _wait_for_checkpoint  # tests/ is on sys.path (its conftest)

from kplug import testing

pytestmark = pytest.mark.xdist_group("resume")

# 30 pydoc paragraphs: 422 training windows of 17 characters, 27 steps of 16 per epoch.
RECIPE = """\
name: streamed-lm
seed: 5
data: {name: pydoc_corpus, document: paragraph, tokenizer: {name: char}, batch_size: 16,
       limit: 30}
model: {name: rnn, units: 8, embedding_dim: 8}
objective: {name: causal_lm, sequence_length: 16}
train: {epochs: 3, checkpoint_every: 5, keep_checkpoints: 3, deterministic: true, verbose: 0}
callbacks: [{name: throttle, seconds: 0.05}]
"""
STEPS = 27 * 3


def start(site: Path, cache: Path, *args: str) -> subprocess.Popen:
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path,
           "KPLUG_DATA_CACHE": str(cache)}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "kplug", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def weights_and_steps(model_path: Path) -> tuple[list[np.ndarray], int]:
    import keras

    model = keras.saving.load_model(model_path)  # plain Keras: no compile configuration
    return model.get_weights(), testing.saved_optimizer_steps(model_path)


def test_sigkill_mid_epoch_on_streamed_shards_then_resume_matches_an_uninterrupted_run(
    site, tmp_path
):
    recipe, cache = tmp_path / "lm.yaml", tmp_path / "cache"
    recipe.write_text(RECIPE)
    prepare = start(site, cache, "data", str(recipe))
    assert prepare.wait(timeout=240) == 0, prepare.stderr.read()[-3000:]
    reference = start(site, cache, "run", str(recipe), "--runs-dir", str(tmp_path / "reference"))
    killed = start(site, cache, "run", str(recipe), "--runs-dir", str(tmp_path / "killed"))
    run_dir = _wait_for_checkpoint(tmp_path / "killed", killed, 40)  # epoch 2 of 27-step epochs
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL

    resumed = start(site, cache, "resume", str(run_dir))
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]
    (reference_dir,) = (tmp_path / "reference" / "streamed-lm").iterdir()

    report = json.loads((run_dir / "data_report.json").read_text())
    assert report["prepared"]["reused"] is True  # the resume read the shards of `kplug data`
    assert report["causal_lm"]["train"]["windows"] == 422
    (resume,) = json.loads((run_dir / "manifest.json").read_text())["resumed"]
    assert resume["global_step"] >= 40 and resume["step_in_epoch"] > 0  # mid-epoch
    expected, expected_steps = weights_and_steps(reference_dir / "model.keras")
    got, steps = weights_and_steps(run_dir / "model.keras")
    assert steps == expected_steps == STEPS
    assert max(float(np.abs(a - b).max()) for a, b in zip(expected, got, strict=True)) <= 1e-6
