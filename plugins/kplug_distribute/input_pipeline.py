"""Batched `tf.data` pipelines from kplug splits (NumPy tuples or unbatched datasets)."""

from __future__ import annotations

from typing import Any


def make_dataset(
    split: Any,
    *,
    batch_size: int,
    training: bool,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
) -> Any:
    """Shuffle (training, seeded, reshuffled each epoch), batch and prefetch a split.

    Args:
        split: a NumPy `(x, y[, sample_weight])` tuple or an unbatched `tf.data.Dataset`.
        batch_size: the global batch size.
        training: shuffle and, if `repeat`, repeat forever.
        seed: the shuffle seed, so a run's data order is reproducible.
    """
    import tensorflow as tf

    if isinstance(split, tuple):
        dataset = tf.data.Dataset.from_tensor_slices(split)
        buffer = len(next(iter(split[0].values())) if isinstance(split[0], dict) else split[0])
    else:
        dataset = split
        cardinality = int(dataset.cardinality())
        buffer = cardinality if 0 < cardinality <= 100_000 else 10_000
    if training and shuffle:
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if training and repeat:
        dataset = dataset.repeat()
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
