"""`kplug tune` in-process on tiny recipes: the table, the files, best.yaml reproducing the
best trial, resuming a finished search, conditions, executions, early stopping, the four
tuners, and an invalid combination failing fast."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

import kplug
from kplug import load_recipe, testing
from kplug.cli import main
from kplug.runner import run

TINY = """\
name: tiny
seed: 7
data: {name: synthetic, shape: [6, 6, 1], num_classes: 3, train_examples: 96,
       validation_examples: 48, test_examples: 16, batch_size: 16}
model: {name: cnn, filters: [4], dense_units: 8}
objective: {name: classification}
train: {epochs: 2, verbose: 0, jit_compile: false}
search:
"""


def tune(write, tmp_path, search: str, *args: str) -> tuple[int, Path]:
    path = write("tune.yaml", TINY + search)
    directory = tmp_path / "tune"
    code = main(["tune", str(path), "--directory", str(directory), *args])
    return code, directory


def results(directory: Path) -> dict:
    return json.loads((directory / "results.json").read_text())


def resolved(run_dir: str) -> dict:
    return yaml.safe_load((Path(run_dir) / "recipe.resolved.yaml").read_text())


GRID = """\
  tuner: grid
  space:
    optimizer.learning_rate: [0.003, 0.03]
    model.dense_units: [4, 16]
"""


def test_grid_search_end_to_end(write, tmp_path, capsys):
    code, directory = tune(write, tmp_path, GRID)
    assert code == 0
    out = capsys.readouterr().out
    rows = results(directory)["trials"]
    combos = {(r["values"]["optimizer.learning_rate"], r["values"]["model.dense_units"])
              for r in rows}  # fmt: skip
    assert combos == {(0.003, 4), (0.003, 16), (0.03, 4), (0.03, 16)}
    assert all(r["status"] == "completed" for r in rows)
    assert out.strip().splitlines()[-1] == str(directory)
    for row in rows:
        assert re.search(rf"^{row['trial']} +completed", out, re.M)  # the table lists it
        # Each trial is a run of the runner, with the trial's values in its recipe.
        trial_recipe = resolved(row["runs"][0])
        values = row["values"]
        assert trial_recipe["optimizer"]["learning_rate"] == values["optimizer.learning_rate"]
        assert trial_recipe["model"]["dense_units"] == values["model.dense_units"]
        metrics = json.loads((Path(row["runs"][0]) / "metrics.json").read_text())
        assert row["value"] == metrics["validation"]["accuracy"]

    with open(directory / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["trial"] for r in table] == [r["trial"] for r in rows]
    assert list(table[0]) == ["trial", "status", "optimizer.learning_rate", "model.dense_units",
                              "val_accuracy", "seconds", "worker"]  # fmt: skip
    assert (directory / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (directory / "keras_tuner" / "oracle.json").is_file()

    best = results(directory)["best"]
    assert best["value"] == max(r["value"] for r in rows)
    best_yaml = directory / "best.yaml"
    assert best_yaml.read_text().startswith(f"# kplug run {best_yaml}\n")
    recipe = load_recipe(best_yaml)
    assert recipe.section("search") is None and recipe.name == "tiny"
    assert recipe.optimizer.learning_rate == best["values"]["optimizer.learning_rate"]
    assert recipe.model.config.dense_units == best["values"]["model.dense_units"]
    again = run(recipe, runs_root=tmp_path / "again", argv=["test"])
    assert abs(again.metrics["validation"]["accuracy"] - best["value"]) <= 0.01

    # Tuning the finished directory again runs nothing; another recipe is refused there.
    runs_before = sorted((directory / "trials").glob("trial-*/2*"))
    assert main(["tune", str(tmp_path / "tune.yaml"), "--resume", str(directory)]) == 0
    assert sorted((directory / "trials").glob("trial-*/2*")) == runs_before
    code = main(["tune", str(tmp_path / "tune.yaml"), "train.epochs=3", "--resume", str(directory)])
    assert code == 2
    err = capsys.readouterr().err
    assert "holds a search of another recipe (it differs in train.epochs)" in err


def test_conditions_executions_and_early_stopping(write, tmp_path):
    search = """\
  tuner: grid
  executions_per_trial: 2
  early_stopping: {patience: 1}
  space:
    model.dense_units: [4, 8]
    model.dropout: {values: [0.0, 0.5], when: {model.dense_units: 8}}
"""
    code, directory = tune(write, tmp_path, search)
    assert code == 0
    rows = results(directory)["trials"]
    assert sorted(json.dumps(r["values"], sort_keys=True) for r in rows) == [
        '{"model.dense_units": 4}',
        '{"model.dense_units": 8, "model.dropout": 0.0}',
        '{"model.dense_units": 8, "model.dropout": 0.5}',
    ]
    for row in rows:
        recipes = [resolved(run_dir) for run_dir in row["runs"]]
        assert [r["seed"] for r in recipes] == [7, 8]  # one run per execution
        assert recipes[0]["train"]["early_stopping"]["monitor"] == "val_accuracy"
        assert recipes[0]["model"]["dropout"] == row["values"].get("model.dropout", 0.0)
        accuracies = [
            json.loads((Path(d) / "metrics.json").read_text())["validation"]["accuracy"]
            for d in row["runs"]
        ]
        assert row["value"] == pytest.approx(sum(accuracies) / 2)


@pytest.mark.parametrize(
    "search, trials",
    [
        ("  tuner: random\n  max_trials: 2\n", 2),
        ("  tuner: bayesian\n  max_trials: 3\n  num_initial_points: 2\n", 3),
    ],
)
def test_random_and_bayesian(search, trials, write, tmp_path):
    space = "  space:\n    optimizer.learning_rate: {min: 1.0e-3, max: 1.0e-1, sampling: log}\n"
    code, directory = tune(write, tmp_path, search + space)
    assert code == 0
    rows = results(directory)["trials"]
    assert len(rows) == trials and all(r["status"] == "completed" for r in rows)
    rates = [r["values"]["optimizer.learning_rate"] for r in rows]
    assert all(1e-3 <= rate <= 1e-1 for rate in rates) and len(set(rates)) == trials


def test_hyperband_continues_trials_from_their_weights(write, tmp_path):
    search = """\
  tuner: hyperband
  max_epochs: 2
  factor: 2
  space:
    model.dense_units: [4, 8, 16]
"""
    code, directory = tune(write, tmp_path, search)
    assert code == 0
    rows = results(directory)["trials"]
    continued = [r for r in rows if (Path(r["runs"][0]) / "init_from.json").is_file()]
    assert continued, "no Hyperband round continued an earlier trial"
    for row in continued:
        assert row["values"]["train.epochs"] == 2
        assert resolved(row["runs"][0])["train"]["epochs"] == 1  # only the epochs left
    best_yaml = yaml.safe_load((directory / "best.yaml").read_text())
    best = results(directory)["best"]
    assert best_yaml["train"]["epochs"] == best["values"]["train.epochs"]
    assert "init_from" not in best_yaml["model"]  # best.yaml trains from scratch


class RefuseCombination:
    """A policy plugin: one combination of otherwise valid values is not a valid recipe."""

    @kplug.hookimpl
    def recipe_loaded(self, recipe):
        if recipe.model.config.dense_units == 16 and recipe.optimizer.learning_rate == 0.03:
            raise kplug.RecipeError("dense_units 16 with learning_rate 0.03 is refused by policy")


def test_invalid_combination_fails_fast(write, tmp_path, capsys):
    search = GRID.replace("[0.003, 0.03]", "[0.03, 0.003]").replace("[4, 16]", "[16, 4]")
    with testing.registered(RefuseCombination(), name="policy"):
        code, directory = tune(write, tmp_path, search)
    assert code == 2
    err = capsys.readouterr().err
    assert ("trial 0000: the combination optimizer.learning_rate=0.03 model.dense_units=16 is "
            "not a valid recipe") in err  # fmt: skip
    assert "refused by policy" in err and "Traceback" not in err
    assert not list((directory / "trials").glob("*/2*"))  # the first trial: nothing trained
    assert json.loads((directory / "manifest.json").read_text())["status"] == "failed"
