"""The seed CNN: its layers, its parameter estimate, and bad shapes."""

from __future__ import annotations

import pytest

from kplug import DataError, DataSpec, testing
from kplug.context import RunContext
from kplug.plugins import registry


def build(model: dict, spec: DataSpec):
    recipe = testing.recipe(
        {"data": {"name": "mnist"}, "model": model, "objective": {"name": "classification"}}
    )
    ctx = RunContext(recipe, registry())
    ctx.data = type("D", (), {"spec": spec})()
    return ctx.build(recipe.model)


MNIST = DataSpec(input_shape=(28, 28, 1), num_classes=10)


def test_seed_architecture():
    model = build({"name": "cnn"}, MNIST)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten",
                     "Dense", "Dense", "Activation"]  # fmt: skip
    assert [layer.filters for layer in model.layers if hasattr(layer, "filters")] == [32, 64, 64]
    assert model.output_shape == (None, 10)
    assert model.count_params() == 93_322  # the seed's network on 28x28x1, 10 classes


@pytest.mark.parametrize(
    "config",
    [
        {"name": "cnn"},
        {"name": "cnn", "filters": [8, 16], "padding": "same", "batch_norm": True,
         "dense_units": [32, 16], "pool_after_last": True},
    ],
)  # fmt: skip
def test_estimate_equals_built(config):
    model = build(config, MNIST)
    estimate = testing.check_estimate(
        "architecture", "cnn", {k: v for k, v in config.items() if k != "name"},
        {"input_shape": [28, 28, 1], "num_classes": 10},
    )  # fmt: skip
    assert estimate["parameters"] == model.count_params()


def test_grayscale_without_channel_axis():
    model = build({"name": "cnn", "filters": [4]}, DataSpec(input_shape=(8, 8), num_classes=2))
    assert model.output_shape == (None, 2)


def test_non_image_input_is_a_clear_error():
    with pytest.raises(DataError, match="needs image inputs"):
        build({"name": "cnn"}, DataSpec(input_shape=(10,), num_classes=2))
