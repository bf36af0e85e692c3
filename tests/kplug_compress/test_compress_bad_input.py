"""Bad compression input: a clear one-paragraph error and exit code 2, never a traceback."""

from __future__ import annotations

import json

import pytest
import yaml

import kplug
from kplug import testing
from kplug.cli import main

TINY = """\
name: tiny
seed: 1
data: {name: synthetic, shape: [8, 8, 1], num_classes: 3, train_examples: 64,
       validation_examples: 16, test_examples: 32, batch_size: 16}
model: {name: cnn, filters: [4, 8], dense_units: 16}
objective: {name: classification}
train: {epochs: 1}
"""


def recipe_with(write, **sections) -> str:
    return str(
        write("bad.yaml", TINY + yaml.safe_dump(sections, default_flow_style=None, sort_keys=False))
    )


def validate_fails(path: str, capsys, *fragments: str) -> None:
    code = main(["validate", path])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    for fragment in fragments:
        assert fragment in captured.err, captured.err


@pytest.mark.parametrize("sparsity", [1.0, -0.1])
def test_sparsity_outside_zero_one(sparsity, write, capsys):
    path = recipe_with(write, compression=[{"name": "prune", "final_sparsity": sparsity}])
    validate_fails(path, capsys, "bad.yaml:", "compression.0.final_sparsity")


@pytest.mark.parametrize(
    ("compression", "export", "fragment"),
    [
        ([{"name": "low_rank", "rank": 2, "energy": 0.9}], [], "give rank or energy, not both"),
        ([{"name": "qat"}, {"name": "prune"}], [], "qat must be the last step"),
        ([{"name": "qat"}], ["keras"], "found after it: keras"),
        ([{"name": "tflite"}], [], "unknown compressor 'tflite'"),
    ],
)
def test_invalid_step_options_fail_validation(compression, export, fragment, write, capsys):
    path = recipe_with(write, compression=compression, export=export)
    validate_fails(path, capsys, fragment)


def run_error(tmp_path, changes: dict, *fragments: str, overrides=()) -> kplug.KplugError:
    """Run the tiny recipe with `changes` in this process; it must fail with a user error
    (exit code 2) whose message has every fragment."""
    recipe = testing.recipe({**yaml.safe_load(TINY), **changes}, overrides)
    with pytest.raises(kplug.KplugError) as info:
        testing.smoke_run(recipe, tmp_path / "runs")
    assert info.value.exit_code == 2
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return info.value


def test_int4_on_a_layer_that_cannot_take_it(tmp_path):
    compression = [{"name": "quantize", "mode": "int4", "layers": ["conv1", "dense1"]}]
    run_error(tmp_path, {"compression": compression},
              "quantize int4: layers conv1 (Conv2D) cannot take int4")  # fmt: skip


def test_teacher_run_directory_that_does_not_exist(write, tmp_path):
    missing = tmp_path / "runs" / "no-such-teacher"
    path = recipe_with(write, compression=[{"name": "distill", "teacher": str(missing)}])
    result = testing.cli("run", path, "--runs-dir", str(tmp_path / "runs"))
    testing.assert_user_error(result, f"distill: teacher: {missing} does not exist")
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    assert not (run_dir / "model.keras").exists()  # failed before training


class ScaledNetwork:
    """A throwaway architecture with a custom layer, which the bridge cannot convert."""

    @kplug.hookimpl
    def register_architectures(self, register):
        register("scaled_mlp", self.build)

    @staticmethod
    def build(config, ctx):
        import keras

        class Doubling(keras.layers.Layer):
            def call(self, x):
                return x * 2.0

        inputs = keras.Input(ctx.spec.input_shape)
        x = keras.layers.Flatten()(inputs)
        x = Doubling(name="doubling")(keras.layers.Dense(8, name="hidden")(x))
        outputs = keras.layers.Dense(ctx.spec.num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs)


def test_unbridgeable_model_sent_to_prune(tmp_path):
    with testing.registered(ScaledNetwork(), name="scaled"):
        run_error(
            tmp_path, {"compression": [{"name": "prune"}]},
            "prune runs on TF-MOT", "doubling (Doubling)", "quantize, distill and low_rank",
            overrides=["model.name=scaled_mlp", "~model.filters", "~model.dense_units"],
        )  # fmt: skip


def test_max_accuracy_drop_fails_after_writing_the_report(tmp_path):
    recipe = testing.recipe(
        {
            "seed": 3,
            "data": {"name": "digits", "batch_size": 32, "limit": 320},
            "model": {"name": "cnn", "filters": [8], "padding": "same", "dense_units": 32},
            "objective": {"name": "classification"},
            "train": {"epochs": 6},
            "compression": [{"name": "prune", "schedule": "constant", "final_sparsity": 0.99,
                             "epochs": 1, "steps_per_epoch": 2, "learning_rate": 1e-9,
                             "max_accuracy_drop": 0.05}],
        }
    )  # fmt: skip
    with pytest.raises(kplug.KplugError, match=r"1\. prune: test accuracy dropped by") as info:
        testing.smoke_run(recipe, tmp_path, smoke=False)
    assert info.value.exit_code == 2
    (run_dir,) = (tmp_path / "test").iterdir()
    rows = json.loads((run_dir / "compression.json").read_text())["rows"]
    assert rows[1]["within_max_drop"] is False and rows[1]["accuracy_drop"] > 0.05
    assert "(failed)" in (run_dir / "compression.md").read_text()
    assert "max_accuracy_drop" in json.loads((run_dir / "manifest.json").read_text())["error"]
