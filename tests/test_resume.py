"""Exact-step resume in real processes: SIGKILL in the middle of an epoch and a resume give
the weights of an uninterrupted run; SIGTERM saves a checkpoint and marks the run
interrupted; a damaged newest checkpoint is skipped; a NaN loss stops the run and keeps
the last good checkpoint."""

from __future__ import annotations

import csv
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

from kplug import testing
from kplug.cli import main

pytestmark = pytest.mark.xdist_group("resume")

# 240 examples / batch 8 = 30 steps per epoch, 3 epochs: 90 optimizer steps.
RECIPE = """\
name: resumable
seed: 7
data: {name: synthetic, shape: [8, 8, 1], num_classes: 3, train_examples: 240,
       validation_examples: 32, test_examples: 32, batch_size: 8}
model: {name: cnn, filters: [4], dense_units: 8}
objective: {name: classification}
optimizer: {name: adam, learning_rate: 3.0e-3, schedule: {name: cosine, warmup_steps: 10}}
train: {epochs: 3, checkpoint_every: 5, keep_checkpoints: 3, deterministic: DETERMINISTIC,
        verbose: 0}
callbacks: [{name: throttle, seconds: 0.05}]
"""
STEPS_PER_EPOCH, EPOCHS = 30, 3


def _start(site: Path, *args: str, ignore_sigint: bool = False) -> subprocess.Popen:
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}
    # A shell starts a background job (`kplug run ... &`) with SIGINT ignored.
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    return subprocess.Popen([sys.executable, "-m", "kplug", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=ignore)  # fmt: skip


def _wait_for_checkpoint(root: Path, process: subprocess.Popen, step: int) -> Path:
    """The run directory, once the checkpoint of global step `step` exists in it."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        found = list(root.glob(f"*/*/checkpoints/step-{step:09d}.json"))
        if found:
            return found[0].parents[1]
        if process.poll() is not None:
            pytest.fail(f"the run ended before step {step}:\n{process.stderr.read()[-3000:]}")
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"no checkpoint of step {step} after 240 s")


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def _weights_and_steps(model_path: Path) -> tuple[list[np.ndarray], int]:
    import keras

    model = keras.saving.load_model(model_path)  # plain Keras: no compile configuration
    return model.get_weights(), testing.saved_optimizer_steps(model_path)


def _history(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(site, tmp_path):
    recipe = tmp_path / "resumable.yaml"
    recipe.write_text(RECIPE.replace("DETERMINISTIC", "true"))
    reference = _start(site, "run", str(recipe), "--runs-dir", str(tmp_path / "reference"))
    killed = _start(site, "run", str(recipe), "--runs-dir", str(tmp_path / "killed"))
    # Global step 45 is the middle of the second epoch.
    run_dir = _wait_for_checkpoint(tmp_path / "killed", killed, 45)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"
    assert not (run_dir / "model.keras").exists()

    resumed = _start(site, "run", str(recipe), "--resume", str(run_dir))
    code, out, err = _finish(resumed)
    assert code == 0, err[-3000:]
    assert out.strip().splitlines()[-1] == str(run_dir)
    code, _, err = _finish(reference)
    assert code == 0, err[-3000:]
    (reference_dir,) = (tmp_path / "reference" / "resumable").iterdir()

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    (resume,) = manifest["resumed"]
    assert resume["global_step"] >= 45 and resume["step_in_epoch"] > 0  # mid-epoch
    expected, expected_steps = _weights_and_steps(reference_dir / "model.keras")
    got, steps = _weights_and_steps(run_dir / "model.keras")
    assert steps == expected_steps == STEPS_PER_EPOCH * EPOCHS
    assert max(float(np.abs(a - b).max()) for a, b in zip(expected, got, strict=True)) <= 1e-6
    # One row per epoch, none repeated or missing, with the uninterrupted run's figures:
    # the resumed epoch's means include the batches trained before the kill.
    history, expected_history = _history(run_dir), _history(reference_dir)
    assert [row["epoch"] for row in history] == [1.0, 2.0, 3.0]
    for row, want in zip(history, expected_history, strict=True):
        assert row.keys() == want.keys()
        assert all(abs(row[k] - want[k]) <= 1e-6 for k in row), (row, want)


def test_sigterm_saves_a_checkpoint_marks_the_run_interrupted_and_resume_completes(
    site, tmp_path, capsys
):
    recipe = tmp_path / "resumable.yaml"
    recipe.write_text(RECIPE.replace("DETERMINISTIC", "false"))
    process = _start(site, "run", str(recipe), "--runs-dir", str(tmp_path / "runs"))
    run_dir = _wait_for_checkpoint(tmp_path / "runs", process, 40)
    process.send_signal(signal.SIGTERM)
    code, _, err = _finish(process)
    assert code == 128 + signal.SIGTERM, err[-3000:]
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and "SIGTERM" in manifest["error"]
    newest = max((run_dir / "checkpoints").glob("step-*.json"))
    meta = json.loads(newest.read_text())
    # Saved at the step boundary after the signal, not only at the last checkpoint_every.
    assert meta["global_step"] > 40 and meta["step_in_epoch"] > 0
    assert f"global step {meta['global_step']}" in err

    # The throttle plugin is not loaded in this process: callbacks may change on resume.
    assert main(["resume", str(run_dir), "callbacks=[]"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(run_dir)
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"
    assert [row["epoch"] for row in _history(run_dir)] == [1.0, 2.0, 3.0]
    assert _weights_and_steps(run_dir / "model.keras")[1] == STEPS_PER_EPOCH * EPOCHS


def test_sigkill_in_the_second_phase_then_resume_matches_an_uninterrupted_run(site, tmp_path):
    # train.phases: conv1 frozen for two epochs, then unfrozen at a lower rate with a new
    # optimizer; the kill lands in the middle of the second phase.
    phased = (
        RECIPE.replace("DETERMINISTIC", "true")
        .replace(
            "model: {name: cnn, filters: [4], dense_units: 8}",
            "model: {name: cnn, filters: [4], dense_units: 8, freeze: [conv1]}",
        )
        .replace(
            "train: {epochs: 3,",
            "train: {epochs: 3, phases: [{epochs: 2}, {epochs: 1, unfreeze: [conv1], "
            "learning_rate: 1.0e-3}],",
        )
    )
    recipe = tmp_path / "phased.yaml"
    recipe.write_text(phased)
    reference = _start(site, "run", str(recipe), "--runs-dir", str(tmp_path / "reference"))
    killed = _start(site, "run", str(recipe), "--runs-dir", str(tmp_path / "killed"))
    run_dir = _wait_for_checkpoint(tmp_path / "killed", killed, 75)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL

    code, _, err = _finish(_start(site, "run", str(recipe), "--resume", str(run_dir)))
    assert code == 0, err[-3000:]
    code, _, err = _finish(reference)
    assert code == 0, err[-3000:]
    (reference_dir,) = (tmp_path / "reference" / "resumable").iterdir()

    (resume,) = json.loads((run_dir / "manifest.json").read_text())["resumed"]
    assert resume["global_step"] >= 75 and resume["step_in_epoch"] > 0
    phases = json.loads((run_dir / "phases.json").read_text())
    assert [phase["epochs"] for phase in phases] == [[0, 2], [2, 3]]
    expected, _ = _weights_and_steps(reference_dir / "model.keras")
    got, _ = _weights_and_steps(run_dir / "model.keras")
    assert max(float(np.abs(a - b).max()) for a, b in zip(expected, got, strict=True)) <= 1e-6
    history, expected_history = _history(run_dir), _history(reference_dir)
    assert [row["epoch"] for row in history] == [1.0, 2.0, 3.0]
    for row, want in zip(history, expected_history, strict=True):
        assert all(abs(row[k] - want[k]) <= 1e-6 for k in row), (row, want)


SMALL = """\
name: small
seed: 3
data: {name: synthetic, shape: [8, 8, 1], num_classes: 3, train_examples: 80,
       validation_examples: 16, test_examples: 16, batch_size: 8}
model: {name: cnn, filters: [4], dense_units: 8}
objective: {name: classification}
train: {epochs: 2, checkpoint_every: 4, keep_checkpoints: 3, verbose: 0}
"""


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01  # the same size: only the checksum tells
    path.write_bytes(bytes(data))


def test_resume_skips_damaged_newest_checkpoints(write, tmp_path, capsys):
    recipe = write("small.yaml", SMALL)
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs")]) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    # A finished run has nothing left to train.
    assert main(["resume", str(run_dir)]) == 2
    assert "nothing is left to train. Raise train.epochs" in capsys.readouterr().err

    folder = run_dir / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.npz")) == [
        "step-000000012.npz", "step-000000016.npz", "step-000000020.npz",
    ]  # fmt: skip
    _truncate(folder / "step-000000020.npz")  # the end of the last epoch
    _flip(folder / "step-000000016.npz")
    assert main(["resume", str(run_dir), "train.epochs=3"]) == 0
    err = capsys.readouterr().err
    assert f"{folder / 'step-000000020.npz'} has " in err and "(truncated?)" in err
    assert f"{folder / 'step-000000016.npz'} does not match its SHA-256" in err
    resume = json.loads((run_dir / "manifest.json").read_text())["resumed"][-1]
    assert resume["checkpoint"] == "step-000000012.npz" and resume["step_in_epoch"] == 2
    assert [row["epoch"] for row in _history(run_dir)] == [1.0, 2.0, 3.0]
    assert _weights_and_steps(run_dir / "model.keras")[1] == 30


def test_a_nan_loss_stops_training_and_keeps_the_last_sane_checkpoint(write, tmp_path, capsys):
    # keep_checkpoints: 1, so that rotation alone would keep only a diverged checkpoint.
    recipe = write("nan.yaml", SMALL.replace("name: small", "name: nan").replace(
        "checkpoint_every: 4, keep_checkpoints: 3", "checkpoint_every: 1, keep_checkpoints: 1"
    ) + "optimizer: {name: sgd, learning_rate: 1.0e+12}\n")  # fmt: skip
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs")]) == 3
    err = capsys.readouterr().err
    found = re.search(r"the loss became (nan|inf) at step (\d+) .*last finite loss was \S+ at "
                      r"step (\d+)", err)  # fmt: skip
    assert found and "Traceback" not in err, err
    step = int(found.group(2))
    assert int(found.group(3)) == step - 1 and step <= 20  # within the first epochs
    assert "optimizer.learning_rate=1e+12" in err and "optimizer.global_clipnorm" in err
    (run_dir,) = (tmp_path / "runs" / "nan").iterdir()
    sane = re.search(
        r"The last checkpoint with a sane loss is kept: (\S+) \(step (\d+)(?:, loss \S+)?\); "
        r"continue from it with `kplug resume \S+ --from-step (\d+)`",
        err,
    )
    assert sane, err
    sane_step = int(sane.group(2))
    assert sane.group(3) == sane.group(2)
    meta = json.loads(Path(sane.group(1)).with_suffix(".json").read_text())
    assert meta["sane"] and meta["global_step"] == sane_step < step
    with np.load(sane.group(1)) as arrays:
        assert all(np.isfinite(arrays[k]).all() for k in arrays.files if k.startswith("model/"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "diverged" in manifest["error"]

    # Continue from the sane checkpoint with a sane learning rate; the newer (diverged)
    # ones are moved aside, not deleted.
    newest = max(int(p.stem.split("-")[1]) for p in (run_dir / "checkpoints").glob("*.json"))
    assert newest > sane_step
    assert main(["resume", str(run_dir), "--from-step", str(sane_step),
                 "optimizer.learning_rate=0.01"]) == 0  # fmt: skip
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"
    (aside,) = (run_dir / "checkpoints").glob(f"after-{sane_step}-*")
    assert (aside / f"step-{newest:09d}.json").is_file()
    assert main(["resume", str(run_dir), "--from-step", "999"]) == 2
    assert "no checkpoint of that step" in capsys.readouterr().err


def test_a_background_run_stops_on_sigint_and_holds_its_run_directory(site, tmp_path, capsys):
    recipe = tmp_path / "resumable.yaml"
    recipe.write_text(RECIPE.replace("DETERMINISTIC", "false"))
    process = _start(site, "run", str(recipe), "--runs-dir", str(tmp_path / "runs"),
                     ignore_sigint=True)  # fmt: skip
    run_dir = _wait_for_checkpoint(tmp_path / "runs", process, 10)
    # A second process cannot train into it: the lock names the holder.
    assert main(["resume", str(run_dir), "callbacks=[]"]) == 2
    assert f"in use by another kplug process (pid {process.pid})" in capsys.readouterr().err
    process.send_signal(signal.SIGINT)
    code, _, err = _finish(process)
    assert code == 128 + signal.SIGINT, err[-3000:]
    assert "stopped by SIGINT" in err and "Traceback" not in err
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert int((run_dir / ".lock").read_text()) == process.pid


def test_a_full_disk_during_training_is_a_clear_error_and_keeps_the_last_checkpoint(site, tmp_path):
    recipe = tmp_path / "full.yaml"
    recipe.write_text(
        RECIPE.replace("DETERMINISTIC", "false").replace(
            "callbacks: [{name: throttle, seconds: 0.05}]",
            "callbacks: [{name: file_size_limit, after_step: 6, bytes: 8000}]",
        )
    )
    code, _, err = _finish(_start(site, "run", str(recipe), "--runs-dir", str(tmp_path / "r")))
    (run_dir,) = (tmp_path / "r" / "resumable").iterdir()
    assert code == 2, err[-3000:]
    assert "internal error" not in err and "Traceback" not in err
    assert f"cannot write to the run directory {run_dir}: File too large" in err
    kept = run_dir / "checkpoints" / "step-000000005.npz"
    assert f"The newest checkpoint is intact: {kept} (step 5)" in err
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "File too large" in manifest["error"]
    # Step 0 (saved before training) and step 5; no temporary left of the failed write.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "step-000000000.json", "step-000000000.npz", "step-000000005.json",
        "step-000000005.npz"]  # fmt: skip


def test_a_run_killed_after_training_finishes_its_stages_on_resume(write, tmp_path, capsys):
    import keras

    recipe = write("small.yaml", SMALL + "export: [keras]\n")
    old_mask = os.umask(0o027)
    try:
        assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs")]) == 0
    finally:
        os.umask(old_mask)
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    # Every file of the run follows the umask (0640 under 027), model.keras and all.
    modes = {p.name: p.stat().st_mode & 0o777 for p in run_dir.rglob("*") if p.is_file()}
    assert set(modes.values()) == {0o640}, modes
    want = keras.saving.load_model(run_dir / "model.keras").get_weights()
    # What a kill during evaluate/compress/export leaves: the training's last checkpoint,
    # no model and no metrics, the manifest still "running" (its process is gone).
    for name in ("model.keras", "metrics.json"):
        (run_dir / name).unlink()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))

    assert main(["resume", str(run_dir)]) == 0, capsys.readouterr().err
    got = keras.saving.load_model(run_dir / "model.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
    assert json.loads((run_dir / "metrics.json").read_text())["test"]
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"
    assert [row["epoch"] for row in _history(run_dir)] == [1.0, 2.0]
    # A completed run still has nothing left to train.
    assert main(["resume", str(run_dir)]) == 2
    assert "nothing is left to train" in capsys.readouterr().err


def test_resume_needs_no_init_from_file_and_takes_trust_model(write, tmp_path, capsys):
    first = write("first.yaml", SMALL)
    assert main(["run", str(first), "--runs-dir", str(tmp_path / "a"), "train.epochs=0"]) == 0
    source = Path(capsys.readouterr().out.strip().splitlines()[-1]) / "model.keras"
    moved = tmp_path / "source.keras"
    source.rename(moved)
    recipe = write("second.yaml", SMALL.replace(
        "model: {name: cnn, filters: [4], dense_units: 8}",
        f"model: {{name: cnn, filters: [4], dense_units: 8, init_from: {moved}}}"))  # fmt: skip
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "b"), "train.epochs=1"]) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    moved.unlink()  # the checkpoint holds every weight: the source is not read again
    assert main(["resume", str(run_dir), "train.epochs=2", "--trust-model"]) == 0
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"
