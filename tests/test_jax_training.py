"""Training machinery on the JAX backend, in real processes: a run with phases, gradient
accumulation, bf16 mixed precision and remat, killed mid-epoch in its second phase and
resumed, ends with the weights and history of the same run uninterrupted."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
from test_resume import (
    RECIPE,
    _finish,
    _history,
    _start,
    _wait_for_checkpoint,
    _weights_and_steps,
)

pytestmark = pytest.mark.xdist_group("resume")

JAX_RECIPE = "backend: jax\n" + RECIPE.replace("DETERMINISTIC", "false").replace(
    "model: {name: cnn, filters: [4], dense_units: 8}",
    "model: {name: cnn, filters: [4], dense_units: 8, freeze: [conv1]}",
).replace(
    "train: {epochs: 3,",
    "train: {epochs: 3, phases: [{epochs: 2}, {epochs: 1, unfreeze: [conv1], "
    "learning_rate: 1.0e-3}], gradient_accumulation_steps: 2, "
    "mixed_precision: mixed_bfloat16, remat: true,",
)


def test_jax_sigkill_in_second_phase_then_resume_matches_an_uninterrupted_run(request, tmp_path):
    plugins = request.getfixturevalue("site")
    recipe = tmp_path / "jax.yaml"
    recipe.write_text(JAX_RECIPE)
    killed = _start(plugins, "run", str(recipe), "--runs-dir", str(tmp_path / "killed"))
    run_dir = _wait_for_checkpoint(tmp_path / "killed", killed, 70)  # phase 2: steps 60-89
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL

    # One run at a time before the kill, so that a loaded machine still reaches step 70
    # within the helper's deadline; the uninterrupted reference runs beside the resume.
    reference = _start(plugins, "run", str(recipe), "--runs-dir", str(tmp_path / "reference"))
    code, out, err = _finish(_start(plugins, "run", str(recipe), "--resume", str(run_dir)))
    assert code == 0, err[-3000:]
    code, _, err = _finish(reference)
    assert code == 0, err[-3000:]
    (reference_dir,) = (tmp_path / "reference" / "resumable").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["backend"] == "jax"
    (resume,) = manifest["resumed"]
    assert resume["global_step"] >= 70 and resume["step_in_epoch"] > 0
    expected, expected_steps = _weights_and_steps(reference_dir / "model.keras")
    got, steps = _weights_and_steps(run_dir / "model.keras")
    assert steps == expected_steps > 0
    assert max(float(np.abs(a - b).max()) for a, b in zip(expected, got, strict=True)) <= 1e-6
    history, expected_history = _history(run_dir), _history(reference_dir)
    assert [row["epoch"] for row in history] == [1.0, 2.0, 3.0]
    for row, want in zip(history, expected_history, strict=True):
        assert all(abs(row[k] - want[k]) <= 1e-6 for k in row), (row, want)
