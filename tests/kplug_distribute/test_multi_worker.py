"""`kplug launch`: real worker processes, gRPC collectives on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import kplug
from kplug import testing
from kplug.training.models import load_model

ROOT = Path(__file__).resolve().parents[2]
RECIPE = str(ROOT / "recipes" / "mnist_cnn_multiworker.yaml")
# Bounded: 256 training images, 2 epochs of 3 global batches of 64.
SHORT = ["data.limit=256", "train.epochs=2", "train.steps_per_epoch=3", "train.verbose=0"]

pytestmark = pytest.mark.xdist_group("distribute")


def test_two_workers_equal_each_other_and_one_process(tmp_path):
    runs = tmp_path / "runs"
    result = testing.cli("launch", "--workers", "2", RECIPE, *SHORT, "--runs-dir", str(runs),
                         timeout=480)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    digests = dict(re.findall(r"\[worker (\d)\] kplug: final weights sha256 (\w+)", result.stdout))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], result.stdout[-4000:]

    chief = Path(result.stdout.strip().splitlines()[-1])
    assert [p for p in runs.rglob("manifest.json")] == [chief / "manifest.json"]
    worker_dir = re.findall(r"\[worker 1\] (/\S+)$", result.stdout, re.M)[-1]
    assert not Path(worker_dir).exists(), "the non-chief worker's directory must be removed"
    strategy = json.loads((chief / "manifest.json").read_text())["strategy"]
    assert strategy["training_loop"] == "distributed_loop"
    assert (strategy["workers"], strategy["replicas"], strategy["chief"]) == (2, 2, True)

    single = testing.smoke_run(
        kplug.load_recipe(RECIPE, [*SHORT, "strategy.name=default", "~strategy.communication"]),
        tmp_path / "single", smoke=False,
    )  # fmt: skip
    together = load_model(chief).get_weights()
    for a, b in zip(load_model(single.directory.path).get_weights(), together, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def _launch(tmp_path, *options: str, epochs: int, steps: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "kplug", "launch", "--workers", "2", *options, RECIPE,
               "data.limit=256", f"train.epochs={epochs}", f"train.steps_per_epoch={steps}",
               "train.verbose=2", "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip


def _kill_worker_1_at(launch: subprocess.Popen, marker: str) -> tuple[str, list[int]]:
    """Read the launch's output; SIGKILL worker 1 when it prints `marker`. Returns the
    output and the first workers' pids."""
    lines, pids, deadline = [], [], time.monotonic() + 480
    try:
        for line in launch.stdout:
            lines.append(line)
            if not pids and (found := re.search(r"pids (\d+), (\d+)", line)):
                pids = [int(p) for p in found.groups()]
            if line.startswith(f"[worker 1] {marker}") and pids and launch.poll() is None:
                os.kill(pids[1], signal.SIGKILL)
                marker = "\0never"  # once
            assert time.monotonic() < deadline, "launch took too long"
        launch.wait(timeout=60)
    finally:
        if launch.poll() is None:
            launch.kill()
    return "".join(lines), pids


def test_a_killed_worker_is_restarted_and_the_run_completes(tmp_path):
    epochs, steps = 3, 20
    launch = _launch(tmp_path, "--restart-failed", epochs=epochs, steps=steps)
    # At "Epoch 2/" epoch 1 has ended, so the chief's backup exists; worker 1 dies mid-epoch.
    output, _ = _kill_worker_1_at(launch, "Epoch 2/")
    assert launch.returncode == 0, output[-4000:]
    assert "worker 1 failed (exit code -9); restarting the cluster" in output
    chief = Path(output.strip().splitlines()[-1])
    model = load_model(chief)
    # Resumed from the backup after epoch 1: every optimizer step done exactly once.
    assert testing.saved_optimizer_steps(chief) == epochs * steps
    manifest = json.loads((chief / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    # The data also resumed where the backup was taken: the weights are those of an
    # uninterrupted run.
    uninterrupted = testing.smoke_run(
        kplug.load_recipe(RECIPE, ["data.limit=256", f"train.epochs={epochs}",
                                   f"train.steps_per_epoch={steps}", "train.verbose=0",
                                   "strategy.name=default", "~strategy.communication"]),
        tmp_path / "single", smoke=False,
    )  # fmt: skip
    reference = load_model(uninterrupted.directory.path).get_weights()
    for a, b in zip(reference, model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_without_restart_a_failed_worker_stops_the_others(tmp_path):
    launch = _launch(tmp_path, epochs=3, steps=20)
    output, pids = _kill_worker_1_at(launch, "Epoch 1/")
    assert launch.returncode == 1, output[-4000:]
    assert "worker 1 failed (exit code -9); stopped the others" in output
    assert not Path(f"/proc/{pids[0]}").exists() or _is_zombie(pids[0]), "worker 0 still runs"


def _is_zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_sigterm_to_launch_stops_every_worker_and_removes_their_temporaries(tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    command = [sys.executable, "-m", "kplug", "launch", "--workers", "2", RECIPE,
               "data.limit=256", "train.epochs=50", "train.steps_per_epoch=20",
               "train.verbose=2", "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                              "TMPDIR": str(temporary)})  # fmt: skip
    lines, pids, deadline = [], [], time.monotonic() + 480
    try:
        for line in launch.stdout:
            lines.append(line)
            if not pids and (found := re.search(r"pids (\d+), (\d+)", line)):
                pids = [int(p) for p in found.groups()]
            if line.startswith("[worker 1] Epoch 1/"):  # both workers are training
                launch.send_signal(signal.SIGTERM)
                break
            assert time.monotonic() < deadline, "launch took too long"
        output = "".join(lines) + launch.communicate(timeout=120)[0]
    finally:
        if launch.poll() is None:
            launch.kill()
    assert launch.returncode == 128 + signal.SIGTERM, output[-4000:]
    assert "SIGTERM received: passed on to the workers" in output
    for pid in pids:  # stopped and reaped, not orphaned
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not list(temporary.iterdir()), "the workers' temporary folders must be removed"
