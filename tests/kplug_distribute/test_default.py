"""The default strategy: seeded input pipeline, reproducible training."""

from __future__ import annotations

import numpy as np
from kplug_distribute.input_pipeline import make_dataset, steps_per_epoch

from kplug import testing
from kplug.training.models import load_model

RECIPE = {
    "data": {"name": "digits", "batch_size": 64, "validation_split": 0.1},
    "model": {"name": "cnn", "filters": [8], "padding": "same", "dense_units": 16},
    "objective": {"name": "classification"},
    "train": {"epochs": 1, "steps_per_epoch": 5},
}


def test_pipeline_shuffles_per_epoch_with_a_seed():
    x = np.arange(20, dtype="float32")
    ds = make_dataset((x, x), batch_size=8, training=True, seed=3)
    assert steps_per_epoch((x, x), batch_size=8) == 3
    batches = [b[0].numpy() for b in ds.take(6)]
    assert [len(b) for b in batches] == [8, 8, 4, 8, 8, 4]  # each epoch ends in a partial batch
    first, second = np.concatenate(batches[:3]), np.concatenate(batches[3:])
    assert sorted(first) == sorted(second) == list(range(20))
    assert not np.array_equal(first, x) and not np.array_equal(first, second)
    # The order depends only on (seed, epoch): a new iterator, or a stream starting after
    # the first 3 or 4 batches, gives the same batches.
    again = np.concatenate([b[0].numpy() for b in ds.take(3)])
    np.testing.assert_array_equal(again, first)
    later = make_dataset((x, x), batch_size=8, training=True, seed=3, start_step=3)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in later.take(3)]), second)
    later = make_dataset((x, x), batch_size=8, training=True, seed=3, start_step=4)
    np.testing.assert_array_equal(next(iter(later))[0].numpy(), batches[4])
    in_order = make_dataset((x, x), batch_size=20, training=False)
    assert next(iter(in_order))[0].numpy().tolist() == x.tolist()


def test_dataset_splits_get_the_same_epoch_semantics():
    import tensorflow as tf

    x = np.arange(20, dtype="float32")
    ds = make_dataset(tf.data.Dataset.from_tensor_slices((x, x)), batch_size=8, training=True,
                      seed=3)  # fmt: skip
    batches = [b[0].numpy() for b in ds.take(6)]
    assert [len(b) for b in batches] == [8, 8, 4, 8, 8, 4]
    first, second = np.concatenate(batches[:3]), np.concatenate(batches[3:])
    assert sorted(first) == sorted(second) == list(range(20)) and not np.array_equal(first, second)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in ds.take(3)]), first)


def test_same_seed_same_weights(tmp_path):
    a = testing.smoke_run(RECIPE, tmp_path / "a", smoke=False)
    b = testing.smoke_run(RECIPE, tmp_path / "b", smoke=False)
    wa = load_model(a.directory.path).get_weights()
    wb = load_model(b.directory.path).get_weights()
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)
