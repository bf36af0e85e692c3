"""`kplug tune` as real processes: SIGINT then resume without redoing finished trials, and
`--workers 2` (KerasTuner's chief and workers over gRPC on 127.0.0.1), both time-bounded."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kplug import testing

pytestmark = pytest.mark.xdist_group("tune_processes")

RECIPE = """\
name: tiny
seed: 3
data: {name: synthetic, shape: [6, 6, 1], num_classes: 3, train_examples: 256,
       validation_examples: 64, test_examples: 16, batch_size: 16}
model: {name: cnn, filters: [4], dense_units: 8}
objective: {name: classification}
train: {epochs: 2, verbose: 0, jit_compile: false}
search:
  tuner: grid
  space:
    optimizer.learning_rate: [0.001, 0.01]
    model.dense_units: [4, 8]
"""
TRIALS = 4
# `kplug`, answering SIGINT like a terminal's Ctrl-C even when these tests run in a
# background job: such jobs ignore SIGINT, and children inherit that.
KPLUG_WITH_CTRL_C = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from kplug.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
TIMEOUT = 300  # seconds; a search that hangs fails the test instead of the suite


def results(directory: Path) -> dict:
    return json.loads((directory / "results.json").read_text())


def finished(directory: Path) -> dict[str, float]:
    """Trials with a result, and when their result was written."""
    return {p.parent.name: p.stat().st_mtime for p in directory.glob("trials/*/result.json")}


def running(directory: Path) -> list[str]:
    """Trials that are training (Keras has opened their metrics.csv) with no result yet.

    Training, not building: a SIGINT while TensorFlow 2.21 builds a model can crash it
    (SIGSEGV in lib_pywrap_tensorflow_common.so, seen here); resuming still works then,
    but this test checks the clean interruption a Ctrl-C gets almost always.
    """
    done = finished(directory)
    training = {p.parent.parent.name for p in directory.glob("trials/trial-*/2*/metrics.csv")}
    return sorted(training - set(done))


def run_dirs(directory: Path, trial: str) -> list[Path]:
    return sorted((directory / "trials" / trial).glob("2*"))


def test_sigint_then_resume_continues_from_finished_trials(write, tmp_path):
    recipe = write("tune.yaml", RECIPE)
    directory = tmp_path / "tune"
    log = tmp_path / "first.log"  # a file, not a pipe: nobody reads while it runs
    with open(log, "w") as out:
        command = ["tune", str(recipe), "--directory", str(directory)]
        process = subprocess.Popen(
            [sys.executable, "-c", KPLUG_WITH_CTRL_C, *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        deadline = time.monotonic() + TIMEOUT
        # Interrupt once a trial has finished and the next one is training.
        while not (finished(directory) and running(directory)) and process.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    output = log.read_text()
    assert process.returncode == 130, output
    assert "interrupted; continue with: kplug tune" in output
    assert json.loads((directory / "manifest.json").read_text())["status"] == "interrupted"
    before = finished(directory)
    assert 1 <= len(before) < TRIALS, output
    interrupted = running(directory)
    assert interrupted, output

    again = testing.cli("tune", str(recipe), "--resume", str(directory), timeout=TIMEOUT)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = results(directory)["trials"]
    assert len(rows) == TRIALS and all(r["status"] == "completed" for r in rows)
    after = finished(directory)
    for trial, written in before.items():  # finished trials were not run again
        assert after[trial] == written and len(run_dirs(directory, trial)) == 1
    for trial in interrupted:  # the trial SIGINT stopped ran again, from its start
        first, second = run_dirs(directory, trial)
        # failed: TensorFlow turns an interrupt while it traces into a TypeError.
        assert json.loads((first / "manifest.json").read_text())["status"] in (
            "interrupted", "failed")  # fmt: skip
        assert json.loads((second / "manifest.json").read_text())["status"] == "completed"
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["status"] == "completed" and len(manifest["resumed"]) == 1


def test_two_workers_share_one_search(write, tmp_path):
    recipe = write("tune.yaml", RECIPE)
    directory = tmp_path / "tune"
    started = time.monotonic()
    result = testing.cli("tune", str(recipe), "--workers", "2", "--directory", str(directory),
                         timeout=TIMEOUT)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert time.monotonic() - started < TIMEOUT
    rows = results(directory)["trials"]
    assert len(rows) == TRIALS and all(r["status"] == "completed" for r in rows)
    assert {r["worker"] for r in rows} == {"tuner0", "tuner1"}, output
    for row in rows:
        # One table of every trial, whichever worker ran it.
        assert re.search(rf"^{row['trial']} +completed", result.stdout, re.M)
    for worker in ("tuner0", "tuner1"):
        assert (directory / "workers" / f"{worker}.log").is_file()
    assert (directory / "best.yaml").is_file()


def test_a_failing_worker_stops_the_search_with_its_error(write, tmp_path):
    # No validation data: the first trial cannot report val_accuracy, a user error.
    recipe = write("tune.yaml", RECIPE.replace("validation_examples: 64", "validation_examples: 0"))
    result = testing.cli("tune", str(recipe), "--workers", "1", "--directory",
                         str(tmp_path / "tune"), timeout=TIMEOUT)  # fmt: skip
    testing.assert_user_error(
        result,
        "worker tuner0 exited with code 2",
        "'val_accuracy' was not reported (the run has no validation data",
    )
