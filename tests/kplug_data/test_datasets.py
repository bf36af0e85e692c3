"""The embedded datasets: real data, fixed splits, estimates that match."""

from __future__ import annotations

import numpy as np
import pytest

from kplug import testing
from kplug.context import RunContext
from kplug.plugins import registry
from kplug.runner import load_data


def load(data: dict):
    recipe = testing.recipe(
        {"data": data, "model": {"name": "cnn"}, "objective": {"name": "classification"}}
    )
    return load_data(RunContext(recipe, registry()))


@pytest.mark.parametrize("name", ["mnist", "digits", "synthetic"])
def test_estimate_matches_the_loaded_data(name):
    data = load({"name": name})
    estimate = testing.check_estimate("dataset", name)
    assert estimate["train_examples"] == len(data.train[0])
    assert estimate["test_examples"] == len(data.test[0])
    assert tuple(estimate["input_shape"]) == data.spec.input_shape == data.train[0].shape[1:]


def test_mnist_is_the_real_5k_with_a_fixed_stratified_split():
    data = load({"name": "mnist"})
    x, y = data.train
    assert x.shape == (4000, 28, 28, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() == 1.0
    assert np.bincount(data.test[1]).tolist() == [100] * 10  # stratified 20%
    again = load({"name": "mnist"})
    np.testing.assert_array_equal(again.test[0], data.test[0])  # fixed across runs
    # a digit is mostly background, with ink in the middle (not random noise)
    assert (x == 0).mean() > 0.7 and x[:, 10:18, 10:18].mean() > x[:, :4, :4].mean()


def test_validation_split_comes_from_train():
    data = load({"name": "mnist", "validation_split": 0.1})
    assert len(data.train[0]) == 3600 and len(data.validation[0]) == 400
    assert len(data.test[0]) == 1000


def test_limit_caps_every_split():
    data = load({"name": "digits", "limit": 50, "validation_split": 0.2})
    assert [len(s[0]) for s in (data.train, data.validation, data.test)] == [50, 50, 50]


def test_synthetic_labels_are_learnable_and_seeded():
    a = load({"name": "synthetic", "shape": [4], "num_classes": 3})
    b = load({"name": "synthetic", "shape": [4], "num_classes": 3})
    np.testing.assert_array_equal(a.train[0], b.train[0])
    assert set(np.unique(a.train[1])) == {0, 1, 2}
