"""`--trust-model`: saved models that need unsafe deserialization (a Lambda layer) and
legacy `.h5` files are refused for `model.init_from` and the distillation teacher, with a
message naming the flag, and loaded when `kplug run --trust-model` is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kplug.cli import main

pytestmark = pytest.mark.xdist_group("bad_inputs")

RECIPE = """\
name: trusting
data: {{name: synthetic, shape: [4, 4, 1], num_classes: 2, train_examples: 16,
       validation_examples: 0, test_examples: 8, batch_size: 4}}
model: {{name: cnn, filters: [2], dense_units: 4{model}}}
objective: {{name: classification}}
train: {{epochs: {epochs}}}
{extra}"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """A tiny model with a Lambda layer, saved as .keras and as legacy .h5; its `conv1`
    matches the recipe's first convolution by name and shape."""
    import keras

    folder = tmp_path_factory.mktemp("models")
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inputs, outputs)
    paths = {"keras": folder / "lambda.keras", "h5": folder / "lambda.h5"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    return paths


def run(tmp_path: Path, capsys, *flags: str, model: str = "", epochs: int = 0, extra=""):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(model=model, epochs=epochs, extra=extra), encoding="utf-8")
    code = main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), *flags])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err, captured.out.strip().splitlines()[-1] if captured.out else ""


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_init_from_an_unsafe_model_needs_trust_model(kind, saved, tmp_path, capsys):
    init = f", init_from: {saved[kind]}"
    code, err, _ = run(tmp_path, capsys, model=init)
    assert code == 2, err
    assert "--trust-model" in err and str(saved[kind]) in err
    reason = "needs unsafe deserialization" if kind == "keras" else "legacy formats (.h5)"
    assert reason in err

    # Trained (epochs 1): without training, the layers conv1 leaves fresh are refused.
    code, err, directory = run(tmp_path, capsys, "--trust-model", model=init, epochs=1)
    assert code == 0, err
    report = json.loads((Path(directory) / "init_from.json").read_text("utf-8"))
    assert report["loaded"] == ["conv1"] and report["source"] == str(saved[kind])


def test_a_lambda_teacher_needs_trust_model(saved, tmp_path, capsys):
    distill = f"compression: [{{name: distill, teacher: {saved['keras']}, epochs: 1}}]\n"
    code, err, _ = run(tmp_path, capsys, "--smoke", epochs=1, extra=distill)
    assert code == 2, err
    assert "needs unsafe deserialization" in err and "--trust-model" in err

    code, err, directory = run(tmp_path, capsys, "--smoke", "--trust-model", epochs=1,
                               extra=distill)  # fmt: skip
    assert code == 0, err
    rows = json.loads((Path(directory) / "compression.json").read_text("utf-8"))["rows"]
    distilled = [row for row in rows if "distill" in row["stage"]]
    assert distilled and distilled[0]["details"]["teacher"] == str(saved["keras"])


def test_kplug_tune_passes_trust_model_to_its_trials(saved, tmp_path, capsys):
    search = "search: {tuner: grid, metric: accuracy, space: {optimizer.learning_rate: [0.01]}}\n"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        RECIPE.format(model=f", init_from: {saved['keras']}", epochs=1, extra=search),
        encoding="utf-8",
    )
    tune = ["tune", str(recipe), "--runs-dir", str(tmp_path / "tunes"), "--smoke"]
    code = main(tune)
    err = capsys.readouterr().err
    assert code != 0 and "--trust-model" in err and "Traceback" not in err

    code = main([*tune, "--trust-model"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    trials = list(Path(captured.out.strip().splitlines()[-1]).rglob("init_from.json"))
    assert trials and json.loads(trials[0].read_text("utf-8"))["loaded"] == ["conv1"]
