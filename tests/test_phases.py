"""`model.freeze`, `model.init_exclude` and `train.phases` (kplug/phases.py) on a real CNN:
frozen weights stay bit-identical, trained ones move, phase 2 unfreezes what it says."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from kplug import RecipeError, testing
from kplug.cli import main
from kplug.training.models import load_model

BASE = {
    "data": {"name": "digits", "batch_size": 32, "limit": 256},
    "model": {"name": "cnn", "filters": [8, 8, 8], "padding": "same", "batch_norm": True,
              "dense_units": 16},
    "objective": {"name": "classification"},
    "optimizer": {"learning_rate": 0.01},
    "train": {"epochs": 1, "steps_per_epoch": 3},
}  # fmt: skip


def weights(run) -> dict[str, list[np.ndarray]]:
    model = load_model(run.directory / "model.keras", compile=False)
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    return testing.smoke_run(BASE, tmp_path_factory.mktemp("pre"), smoke=False)


def with_model(**options):
    return {**BASE, "model": {**BASE["model"], **options}}


def test_freeze_base_keeps_conv_and_batch_norm_statistics(pretrained, tmp_path):
    recipe = with_model(init_from=str(pretrained.directory.path), freeze="base")
    run = testing.smoke_run(recipe, tmp_path, smoke=False)
    before, after = weights(pretrained), weights(run)
    for name in ("conv1", "conv2", "conv3", "bn1", "bn2", "bn3"):
        # bn moving mean/variance unchanged too: a frozen BatchNormalization runs in
        # inference mode
        assert same(before[name], after[name]), name
    for name in ("dense1", "logits"):
        assert not same(before[name], after[name]), name
    (phase,) = run.directory.read_json("phases.json")
    assert phase["trained_layers"] == ["dense1", "logits"]
    assert "conv1" in phase["frozen_layers"] and "bn3" in phase["frozen_layers"]


def test_two_phases_unfreeze_the_top_block_with_their_own_rate(pretrained, tmp_path):
    recipe = with_model(init_from=str(pretrained.directory.path), freeze="base")
    recipe["train"] = {"steps_per_epoch": 3, "phases": [
        {"epochs": 2},
        {"epochs": 1, "unfreeze": ["conv3", "bn3"], "learning_rate": 1e-3},
    ]}  # fmt: skip
    run = testing.smoke_run(recipe, tmp_path, smoke=False)
    before, after = weights(pretrained), weights(run)
    for name in ("conv1", "conv2", "bn1", "bn2"):
        assert same(before[name], after[name]), name
    for name in ("conv3", "bn3", "dense1", "logits"):
        assert not same(before[name], after[name]), name
    first, second = run.directory.read_json("phases.json")
    assert first["epochs"] == [0, 2] and second["epochs"] == [2, 3]
    assert first["learning_rate"] == 0.01 and second["learning_rate"] == 1e-3
    assert "conv3" not in first["trained_layers"] and "conv3" in second["trained_layers"]
    assert second["trainable_parameters"] > first["trainable_parameters"]
    # the epochs continue in one metrics.csv: one header, epochs 1, 2, 3 (as in train.log)
    rows = list(csv.DictReader((run.directory / "metrics.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert run.metrics["epochs"] == 3


def test_init_exclude_keeps_the_head_fresh(pretrained, tmp_path):
    # conv1 frozen, so one smoke epoch trains only the fresh head (with train.epochs=0 a
    # fresh layer is refused: test_init_from.py).
    recipe = with_model(init_from=str(pretrained.directory.path), init_exclude="logits",
                        init_strict=True, freeze=["conv1"])  # fmt: skip
    run = testing.smoke_run({**recipe, "train": {"epochs": 1}}, tmp_path)
    report = run.directory.read_json("init_from.json")
    assert report["skipped"] == {"logits": "excluded (model.init_exclude)"}
    before, after = weights(pretrained), weights(run)
    assert same(before["conv1"], after["conv1"]) and not same(before["logits"], after["logits"])


def test_a_pattern_that_matches_nothing_is_an_error(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\ndata: {name: digits, limit: 64}\nobjective: {name: classification}\n"
        "model: {name: cnn, filters: [4], padding: same, freeze: [cnov*]}\n"
    )
    assert main(["run", str(recipe), "--smoke", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "model.freeze: no layer matches 'cnov*'" in err and "conv1" in err
    assert "Traceback" not in err


def test_epochs_that_disagree_with_the_phases_are_a_recipe_error():
    with pytest.raises(RecipeError, match="phases add up to 3 epochs"):
        testing.recipe({**BASE, "train": {"epochs": 5, "phases": [{"epochs": 1}, {"epochs": 2}]}})
    recipe = testing.recipe({**BASE, "train": {"phases": [{"epochs": 1}, {"epochs": 2}]}})
    assert recipe.train.epochs == 3
    assert testing.recipe(recipe.resolved()).train.epochs == 3  # the resolved recipe reloads


def test_base_on_an_architecture_without_one_is_an_error(tmp_path):
    from kplug.context import RunContext
    from kplug.plugins import registry
    from kplug.training.phases import plan, set_trainable

    recipe = testing.recipe({**BASE, "model": {"name": "cnn", "freeze": "base"}})
    ctx = RunContext(recipe, registry())  # nothing marked the base in ctx.state

    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="head")])
    with pytest.raises(RecipeError, match="does not mark a base"):
        set_trainable(model, plan(ctx)[0], ctx)
