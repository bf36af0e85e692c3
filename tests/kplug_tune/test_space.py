"""The search-space grammar, its translation to KerasTuner, and bad spaces (exit 2, before
anything trains)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kplug_tune.config import GridConfig, SpaceEntry

from kplug import testing
from kplug.cli import main

RECIPE = """\
name: tiny
data: {name: synthetic, shape: [8, 8, 1], num_classes: 3, train_examples: 64,
       validation_examples: 32, test_examples: 16, batch_size: 16}
model: {name: cnn, filters: [4], dense_units: 8}
objective: {name: classification}
train: {epochs: 1, verbose: 0, jit_compile: false}
search:
  tuner: grid
  space:"""


def search_recipe(write, space: str, extra: str = ""):
    """The tiny recipe with `space` after `space:` (a mapping on the next lines, or inline)."""
    return write("r.yaml", RECIPE + space + extra)


def test_grammar_forms():
    choice = SpaceEntry.model_validate([0.001, 0.01])
    assert choice.is_choice and not choice.ordered
    assert SpaceEntry.model_validate({"min": 8, "max": 64, "step": 8}).is_integer_range
    floats = SpaceEntry.model_validate({"min": 1e-4, "max": 1e-1, "sampling": "log"})
    assert not floats.is_choice and not floats.is_integer_range
    assert SpaceEntry.model_validate({"values": [2, 4, 8], "ordered": True}).ordered


@pytest.mark.parametrize(
    "values, sent",
    [
        (["relu", "gelu"], ["relu", "gelu"]),
        ([1, 2], [1, 2]),
        ([1, 0.5], [1.0, 0.5]),  # mixed numbers travel as floats
        ([True, False], ["true", "false"]),  # gRPC would turn booleans into ints
        ([[16, 32], [32, 64]], ["[16, 32]", "[32, 64]"]),  # lists: a choice of layer sizes
        ([None, 0.01], ["null", "0.01"]),
    ],
)
def test_values_travel_through_keras_tuner_and_back(values, sent):
    entry = SpaceEntry.model_validate(values)
    assert [entry.encode(v) for v in values] == sent
    assert [entry.decode(entry.encode(v)) for v in values] == values


def test_declared_space_and_conditions():
    import keras_tuner

    config = GridConfig.model_validate(
        {
            "space": {
                "model.dropout": {"values": [0.0, 0.5], "when": {"model.cell": "lstm"}},
                "model.cell": ["lstm", "gru"],
                "optimizer.learning_rate": {"min": 1e-4, "max": 1e-1, "sampling": "log"},
                "model.units": {"min": 8, "max": 32, "step": 8},
            }
        }
    )
    hp = keras_tuner.HyperParameters()
    config.declare(hp)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"model.cell": "Choice", "model.dropout": "Choice",
                     "optimizer.learning_rate": "Float", "model.units": "Int"}  # fmt: skip
    assert [p.name for p in hp.space][:2] == ["model.cell", "model.dropout"]  # parent first
    hp.values["model.cell"] = "gru"
    assert not hp.is_active("model.dropout")
    hp.values["model.cell"] = "lstm"
    assert hp.is_active("model.dropout")
    assert config.grid_size() is None  # conditions: KerasTuner counts
    no_conditions = GridConfig.model_validate({"space": {"a.b": [1, 2, 3], "c": [1, 2]}})
    assert no_conditions.grid_size() == 6


def test_a_search_recipe_validates_without_tensorflow(write):
    path = search_recipe(write, "\n    optimizer.learning_rate: [0.001, 0.01]\n")
    code = (
        "import sys\nfrom kplug.cli import main\ncode = main(['validate', sys.argv[1]])\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\nsys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- bad spaces: exit 2 with the key and the fix, at validation time -------------------

BAD_SPACES = {
    "unknown key": (
        "\n    optimizer.learning_rate: [0.001, 0.01]\n    model.dense_unit: [8, 16]\n",
        ["r.yaml:11", "search.space.model.dense_unit", "did you mean 'dense_units'"],
    ),
    "value the recipe refuses": (
        "\n    model.dropout: [0.0, 1.5]\n",
        ["r.yaml:10", "search.space.model.dropout", "1.5", "less than 1"],
    ),
    "empty choice list": (
        "\n    optimizer.learning_rate: []\n",
        ["r.yaml:10", "search.space.optimizer.learning_rate", "list of choices is empty"],
    ),
    "min greater than max": (
        "\n    model.dense_units: {min: 64, max: 8}\n",
        ["r.yaml:10", "min (64) is greater than max (8)"],
    ),
    "log range from zero": (
        "\n    optimizer.learning_rate: {min: 0, max: 0.1, sampling: log}\n",
        ["log sampling needs min > 0"],
    ),
    "condition on an unsearched key": (
        "\n    model.dropout: {values: [0.1, 0.2], when: {model.cell: lstm}}\n",
        ["'model.cell' is not a key of the search space"],
    ),
    "condition never true": (
        "\n    model.dense_units: [8, 16]\n"
        "    model.dropout: {values: [0.1, 0.2], when: {model.dense_units: 32}}\n",
        ["model.dense_units never takes the value 32"],
    ),
    "the run name": ("\n    name: [a, b]\n", ["name, search, extends cannot be searched"]),
    "empty space": (" {}\n", ["search space is empty"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_space_exits_2(case, write, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a tune that got through would write runs/ here
    space, fragments = BAD_SPACES[case]
    path = search_recipe(write, space)
    for command in ("validate", "tune"):
        assert main([command, str(path)]) == 2, command
        err = capsys.readouterr().err
        for fragment in fragments:
            assert fragment in err, err
        assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_overrides_after_flags(write, tmp_path, capsys):
    path = search_recipe(write, "\n    optimizer.learning_rate: [0.001, 0.01]\n")
    args = ["tune", str(path), "--smoke", "--directory", str(tmp_path / "t"), "model.dense_unit=4"]
    assert main(args) == 2  # read as an override (argparse would exit with SystemExit)
    assert "did you mean 'dense_units'" in capsys.readouterr().err


def test_resume_needs_a_tune_directory(write, tmp_path, capsys):
    path = search_recipe(write, "\n    optimizer.learning_rate: [0.001, 0.01]\n")
    assert main(["tune", str(path), "--resume", str(tmp_path)]) == 2
    assert "is not a kplug tune directory" in capsys.readouterr().err
    assert main(["tune", str(path), "--workers", "-1"]) == 2
    assert "--workers -1: give a number of worker processes" in capsys.readouterr().err


def test_recipe_without_search_cannot_be_tuned(minimal_recipe, capsys):
    assert main(["tune", str(minimal_recipe)]) == 2
    assert "there is no search: section to tune" in capsys.readouterr().err


def test_metric_the_objective_does_not_report(write, tmp_path, capsys):
    path = search_recipe(write, "\n    optimizer.learning_rate: [0.001, 0.01]\n",
                         "  metric: val_f1_score\n")  # fmt: skip
    directory = tmp_path / "tune"
    assert main(["tune", str(path), "--directory", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "search.metric: objective 'classification' does not report 'val_f1_score'" in err
    assert "val_accuracy" in err and "Traceback" not in err
    assert not directory.exists()  # refused before anything was written


def test_bad_input_in_a_real_process(write):
    path = search_recipe(write, "\n    optimizer.learning_rat: [0.001, 0.01]\n")
    result = testing.cli("tune", str(path))
    testing.assert_user_error(result, "search.space.optimizer.learning_rat",
                              "did you mean 'learning_rate'")  # fmt: skip
