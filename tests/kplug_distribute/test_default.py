"""The default strategy: seeded input pipeline, reproducible training."""

from __future__ import annotations

import numpy as np
from kplug_distribute.input_pipeline import make_dataset

from kplug import testing
from kplug.models import load_model

RECIPE = {
    "data": {"name": "digits", "batch_size": 64, "validation_split": 0.1},
    "model": {"name": "cnn", "filters": [8], "padding": "same", "dense_units": 16},
    "objective": {"name": "classification"},
    "train": {"epochs": 1, "steps_per_epoch": 5},
}


def test_pipeline_shuffles_per_epoch_with_a_seed():
    x = np.arange(20, dtype="float32")
    ds = make_dataset((x, x), batch_size=20, training=True, seed=3)
    first, second = (next(iter(ds))[0].numpy() for _ in range(2))
    assert sorted(first) == list(range(20)) and not np.array_equal(first, x)
    again = make_dataset((x, x), batch_size=20, training=True, seed=3)
    np.testing.assert_array_equal(next(iter(again))[0].numpy(), first)
    assert next(iter(make_dataset((x, x), batch_size=20, training=False)))[0].numpy().tolist() == (
        x.tolist()
    )


def test_same_seed_same_weights(tmp_path):
    a = testing.smoke_run(RECIPE, tmp_path / "a", smoke=False)
    b = testing.smoke_run(RECIPE, tmp_path / "b", smoke=False)
    wa = load_model(a.directory.path).get_weights()
    wb = load_model(b.directory.path).get_weights()
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)
