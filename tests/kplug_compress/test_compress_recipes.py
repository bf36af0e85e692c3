"""The distillation recipe needs a teacher run, so tests/test_recipes.py leaves its smoke
run to this test, which makes a teacher first."""

from __future__ import annotations

import json
from pathlib import Path

from kplug import load_recipe
from kplug.runner import run

ROOT = Path(__file__).resolve().parents[2]


def test_distill_recipe_smoke_runs(tmp_path):
    teacher = run(load_recipe(ROOT / "recipes/mnist_cnn.yaml"), runs_root=tmp_path, smoke=True)
    recipe = load_recipe(
        ROOT / "recipes/compress/mnist_distill.yaml",
        [f"compression.0.teacher={teacher.directory}"],
    )
    result = run(recipe, runs_root=tmp_path, smoke=True, argv=["test"])
    assert result.status == "completed"
    rows = json.loads((result.directory / "compression.json").read_text())["rows"]
    details = rows[1]["details"]
    assert details["student_parameters"] * 9 < details["teacher_parameters"]
    assert "student_alone_test" in details
