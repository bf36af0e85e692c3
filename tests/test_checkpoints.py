"""Checkpoint files without TensorFlow: atomic writes with a checksum, rotation, the
choice of the newest valid one when newer ones are truncated or corrupted, the preflight
check, and the resume errors that come before any training (exit 2, nothing written)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from kplug import testing
from kplug.cli import main
from kplug.errors import RunError
from kplug.rundir import RunDirectory
from kplug.training import checkpoints
from kplug.training.resume import differences, open_for_resume


def _write(run_dir: Path, step: int, keep: int = 3) -> Path:
    arrays = {"model/00000": np.full((4, 3), step, np.float32), "rng/numpy_keys": np.arange(3)}
    meta = {"epoch": step // 10, "step_in_epoch": step % 10, "global_step": step,
            "steps_per_epoch": 10, "history": {"loss": [1.0] * (step // 10)},
            "variables": {"model": ["dense/kernel"], "optimizer": [], "metrics": []},
            "rng": {"numpy": ["MT19937", 0, 0, 0.0], "python": [3, [0], None]}}  # fmt: skip
    return checkpoints.write_checkpoint(run_dir, arrays, meta, keep=keep)


def test_checkpoint_has_its_checksum_and_only_the_newest_are_kept(tmp_path):
    for step in (5, 10, 15, 20):
        _write(tmp_path, step, keep=2)
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "step-000000015.json", "step-000000015.npz", "step-000000020.json", "step-000000020.npz",
    ]  # fmt: skip
    meta = json.loads((folder / "step-000000020.json").read_text())
    data = (folder / "step-000000020.npz").read_bytes()
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["bytes"] == len(data)
    newest = checkpoints.newest_valid(tmp_path)
    assert newest.global_step == 20 and (newest.epoch, newest.step_in_epoch) == (2, 0)
    assert float(newest.arrays()["model/00000"][0, 0]) == 20.0


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncated", "flipped-bytes"])
def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning(tmp_path, caplog, damage):
    for step in (10, 20, 25):
        _write(tmp_path, step)
    bad = tmp_path / "checkpoints" / "step-000000025.npz"
    damage(bad)
    with caplog.at_level(logging.WARNING, logger="kplug"):
        chosen = checkpoints.newest_valid(tmp_path)
    assert chosen.global_step == 20
    assert str(bad) in caplog.text and "trying the previous one" in caplog.text


def test_unreadable_metadata_and_missing_npz_are_skipped(tmp_path):
    for step in (10, 20, 30):
        _write(tmp_path, step)
    folder = tmp_path / "checkpoints"
    (folder / "step-000000030.json").write_text('{"epoch": 3, "glob')  # a torn write
    (folder / "step-000000020.npz").unlink()
    assert checkpoints.newest_valid(tmp_path).global_step == 10
    (folder / "step-000000010.npz").unlink()
    assert checkpoints.newest_valid(tmp_path) is None


def _rewrite_meta(path: Path, change, *, checksum: bool) -> None:
    meta = json.loads(path.read_text())
    change(meta)
    if checksum:  # a writer with a bug, not a damaged file: the checksum matches
        meta["meta_sha256"] = checkpoints._meta_checksum(meta)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "change, checksum, problem",
    [
        (lambda m: m.update(epoch=m["epoch"] - 1), False, "does not match its SHA-256"),
        (lambda m: m.pop("rng"), True, "invalid metadata: rng"),
        (lambda m: m.update(epoch="2"), True, "invalid metadata: epoch"),
        (lambda m: m.update(global_step=-5), True, "invalid metadata: global_step"),
        (lambda m: m["rng"].update(numpy=[1]), True, "not a saved random state"),
        (lambda m: m.update(file="../../etc/passwd"), True, "not an npz beside it"),
    ],
    ids=["one-digit-edit", "missing-field", "mistyped-field", "negative-step", "bad-rng",
         "npz-elsewhere"],
)  # fmt: skip
def test_checkpoint_metadata_is_checksummed_and_validated(tmp_path, caplog, change, checksum,
                                                          problem):  # fmt: skip
    for step in (10, 20, 30):
        _write(tmp_path, step)
    bad = tmp_path / "checkpoints" / "step-000000030.json"
    _rewrite_meta(bad, change, checksum=checksum)
    with caplog.at_level(logging.WARNING, logger="kplug"):
        chosen = checkpoints.newest_valid(tmp_path)
    assert chosen.global_step == 20  # the previous one, as for a damaged npz
    assert str(bad) in caplog.text and problem in caplog.text


def test_rotation_removes_leftover_temporaries_of_a_killed_write(tmp_path):
    _write(tmp_path, 10)
    leftover = tmp_path / "checkpoints" / ".step-000000020.npz.abc.tmp"
    leftover.write_bytes(b"half")
    _write(tmp_path, 20)
    assert not leftover.exists()


def test_preflight_passes_for_a_small_model_and_refuses_one_that_cannot_fit(tmp_path):
    checkpoints.preflight(tmp_path, parameters=10_000, optimizer_slots=2)
    free = __import__("shutil").disk_usage(tmp_path).free
    huge = free // 4  # 4 bytes x 3 copies x 2 checkpoints > free
    with pytest.raises(RunError, match="not enough disk space") as error:
        checkpoints.preflight(tmp_path, parameters=huge, optimizer_slots=2)
    assert f"{huge:,} parameters" in str(error.value) and "keep_checkpoints=0" in str(error.value)
    assert not list(tmp_path.iterdir())  # the probe file is gone


def test_preflight_refuses_a_run_directory_it_cannot_write(tmp_path):
    target = tmp_path / "read-only"
    target.mkdir()
    target.chmod(0o500)
    try:
        if os.access(target, os.W_OK):  # root writes anyway: use a folder nobody can
            target = Path("/proc/self")
        with pytest.raises(RunError, match="is not writable"):
            checkpoints.preflight(target, parameters=None, optimizer_slots=0)
    finally:
        (tmp_path / "read-only").chmod(0o700)


def test_preflight_runs_before_any_data_is_loaded(write, tmp_path, capsys):
    recipe = write("big.yaml", """\
name: big
data: {name: synthetic, shape: [64, 64, 1], num_classes: 3, batch_size: 8}
model: {name: cnn, filters: [4], dense_units: 100000000}
objective: {name: classification}
train: {epochs: 1}
""")  # fmt: skip
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "not enough disk space" in err and "Traceback" not in err
    (run_dir,) = (tmp_path / "runs" / "big").iterdir()
    assert not (run_dir / "data_report.json").exists()  # the data stage never ran
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "failed"


# --- resume errors that come before training -------------------------------------------


@pytest.fixture
def stopped_run(tmp_path, minimal_recipe):
    """A run directory as `kplug run` leaves it, with one checkpoint (no TensorFlow)."""
    from kplug import load_recipe

    recipe = load_recipe(minimal_recipe)
    run_dir = RunDirectory.create(tmp_path / "runs", "tiny")
    run_dir.write_text("recipe.resolved.yaml", recipe.to_yaml())
    run_dir.write_json("manifest.json", {"name": "tiny", "status": "interrupted"})
    _write(run_dir.path, 3)
    return run_dir


def _files(path):
    return {p: p.read_bytes() for p in testing.files_under(path)}


@pytest.mark.parametrize(
    "overrides, keys",
    [
        (["model.filters=[8]", "seed=1"], ["model.filters", "seed"]),
        (
            ["data.batch_size=8", "objective.label_smoothing=0.1"],
            ["data.batch_size", "objective.label_smoothing"],
        ),
    ],
)
def test_resume_refuses_a_changed_model_data_objective_or_seed(stopped_run, capsys, overrides,
                                                               keys):  # fmt: skip
    before = _files(stopped_run.path)
    assert main(["resume", str(stopped_run), *overrides]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "Traceback" not in err
    for key in keys:
        assert f"  - {key}: " in err
    assert _files(stopped_run.path) == before  # nothing written


def test_differences_lists_each_changed_leaf():
    old = {"train": {"epochs": 3, "verbose": 0}, "seed": 1, "export": []}
    new = {"train": {"epochs": 5, "verbose": 0}, "seed": 1, "export": ["keras"]}
    assert differences(old, new) == [("export", [], ["keras"]), ("train.epochs", 3, 5)]


def test_resume_allows_epochs_and_learning_rate_and_picks_the_checkpoint(stopped_run):
    from kplug import load_recipe

    changes = ["train.epochs=4", "optimizer.learning_rate=1e-4", "export=[keras]"]
    recipe = load_recipe(stopped_run / "recipe.resolved.yaml", changes)
    directory, checkpoint = open_for_resume(stopped_run.path, recipe)
    assert directory.path == stopped_run.path and checkpoint.global_step == 3


def test_resume_without_a_valid_checkpoint_or_run_directory(stopped_run, tmp_path, capsys):
    for path in (stopped_run / "checkpoints").glob("*.npz"):
        _flip(path)
    assert main(["resume", str(stopped_run)]) == 2
    assert "no valid checkpoint" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "not a kplug run directory" in capsys.readouterr().err
    assert main(["run"]) == 2
    assert "needs a RECIPE" in capsys.readouterr().err


def test_resume_refuses_a_run_directory_another_process_holds(stopped_run, capsys):
    import subprocess
    import sys

    # A real second process holding the lock, as a `kplug run` or `kplug resume` does.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from kplug.rundir import RunDirectory; "
         f"RunDirectory({str(stopped_run.path)!r}).lock(); print('locked', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _files(stopped_run.path)
        assert main(["resume", str(stopped_run)]) == 2
        err = capsys.readouterr().err
        assert f"in use by another kplug process (pid {holder.pid})" in err
        assert _files(stopped_run.path) == before
    finally:
        holder.kill()
        holder.wait()
    # Once it is gone, the lock is free (the kernel drops a dead process's flock).
    directory = RunDirectory(stopped_run.path)
    directory.lock()
    directory.unlock()
