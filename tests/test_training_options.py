"""The core `train:` and `optimizer:` options work for any model."""

from __future__ import annotations

import numpy as np
import pytest

from kplug import RecipeError, testing
from kplug.context import RunContext
from kplug.plugins import registry

BASE = {
    "data": {"name": "digits", "batch_size": 32, "validation_split": 0.1},
    "model": {"name": "cnn", "filters": [8], "padding": "same", "dense_units": 16},
    "objective": {"name": "classification"},
}


def optimizer_for(overrides: list[str], steps: int = 10):
    recipe = testing.recipe(BASE, ["train.epochs=1", f"train.steps_per_epoch={steps}", *overrides])
    return RunContext(recipe, registry()).make_optimizer()


def test_optimizer_options_reach_keras():
    opt = optimizer_for(["optimizer.name=adamw", "optimizer.weight_decay=0.01",
                         "optimizer.global_clipnorm=1.0", "optimizer.beta_1=0.5",
                         "train.gradient_accumulation_steps=4"])  # fmt: skip
    assert type(opt).__name__ == "AdamW"
    assert opt.weight_decay == pytest.approx(0.01) and opt.global_clipnorm == 1.0
    assert opt.beta_1 == 0.5 and opt.gradient_accumulation_steps == 4


def test_weight_decay_skips_biases_and_norms():
    import keras

    opt = optimizer_for(["optimizer.name=adamw", "optimizer.weight_decay=0.1"])
    dense, norm = keras.layers.Dense(2), keras.layers.LayerNormalization()
    dense.build((None, 2))
    norm.build((None, 2))
    decayed = {v.name: opt._use_weight_decay(v) for v in [*dense.weights, *norm.weights]}
    assert decayed == {"kernel": True, "bias": False, "gamma": False, "beta": False}


def test_option_an_optimizer_does_not_take_is_a_clear_error():
    with pytest.raises(RecipeError, match="optimizer 'adam' rejects these options"):
        optimizer_for(["optimizer.momentum=0.9"])


@pytest.mark.parametrize("name", ["cosine", "linear", "exponential", "constant"])
def test_schedules_warm_up_then_decay(name):
    opt = optimizer_for(
        ["optimizer.learning_rate=0.1", f"optimizer.schedule.name={name}",
         "optimizer.schedule.warmup_steps=10", "optimizer.schedule.final_fraction=0.1"],
        steps=110,
    )  # fmt: skip
    schedule = opt._learning_rate
    rates = [float(schedule(step)) for step in (0, 9, 10, 60, 110)]
    assert rates[0] == pytest.approx(0.01) and rates[1] == pytest.approx(0.1)
    assert rates[2] == pytest.approx(0.1)
    if name == "constant":
        assert rates[4] == pytest.approx(0.1)
    else:
        assert rates[3] < 0.1 and rates[4] < rates[3]
    if name in ("cosine", "linear"):
        assert rates[4] == pytest.approx(0.01, rel=0.05)


def test_mixed_precision_trains_without_nan(tmp_path):
    import keras

    result = testing.smoke_run(BASE, tmp_path, overrides=["train.mixed_precision=mixed_float16"])
    assert np.isfinite(result.metrics["test"]["loss"])
    model = keras.saving.load_model(result.directory / "model.keras")
    assert model.get_layer("conv1").dtype_policy.name == "mixed_float16"
    keras.config.set_dtype_policy("float32")


def test_remat_gives_the_same_loss(tmp_path):
    plain = testing.smoke_run(BASE, tmp_path / "a", overrides=["train.steps_per_epoch=3"])
    remat = testing.smoke_run(
        BASE, tmp_path / "b", overrides=["train.steps_per_epoch=3", "train.remat=true"]
    )
    assert remat.metrics["train"]["loss"] == pytest.approx(plain.metrics["train"]["loss"], 1e-5)


def test_early_stopping_stops(tmp_path):
    result = testing.smoke_run(
        BASE, tmp_path, smoke=False,
        overrides=["train.epochs=30", "train.steps_per_epoch=2", "optimizer.learning_rate=1e-9",
                   "train.early_stopping={monitor: val_loss, patience: 1, min_delta: 0.5}"],
    )  # fmt: skip
    assert result.metrics["epochs"] == 2
