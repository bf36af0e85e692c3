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
    sharded: bool = False,
    drop_remainder: bool = False,
) -> Any:
    """Shuffle (training, seeded, reshuffled each epoch), batch and prefetch a split.

    NumPy splits are shuffled as indices and gathered a whole batch at a time, which is
    as fast as Keras' own array adapter; datasets are shuffled element-wise.

    Args:
        split: a NumPy `(x, y[, sample_weight])` tuple or an unbatched `tf.data.Dataset`.
        batch_size: the global batch size.
        training: shuffle and, if `repeat`, repeat forever.
        seed: the shuffle seed, so a run's data order is reproducible.
        sharded: set the auto-shard policy for a `tf.distribute` strategy that splits the
            data between workers.
        drop_remainder: drop a last partial batch (devices that need equal shards).
    """
    import tensorflow as tf

    if isinstance(split, tuple):
        dataset = _from_arrays(split, batch_size, training and shuffle, seed,
                               training and repeat, drop_remainder)  # fmt: skip
        return _shard_by(dataset, "DATA") if sharded else dataset
    dataset = split
    if training and shuffle:
        cardinality = int(dataset.cardinality())
        buffer = cardinality if 0 < cardinality <= 100_000 else 10_000
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if training and repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    return _shard_by(dataset, "AUTO") if sharded else dataset


def _shard_by(dataset: Any, policy: str) -> Any:
    """In-memory data has no files to split: each worker keeps its share of every global
    batch (DATA). A file dataset gets AUTO: whole files per worker when there are enough
    files, else by element."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, policy
    )
    return dataset.with_options(options)


def _from_arrays(
    split: tuple, batch_size: int, shuffle: bool, seed: int, repeat: bool, drop_remainder: bool
) -> Any:
    import tensorflow as tf

    tensors = tf.nest.map_structure(tf.convert_to_tensor, split)
    first = tf.nest.flatten(tensors)[0]
    n = int(first.shape[0])
    indices = tf.data.Dataset.range(n)
    if shuffle:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        indices = indices.repeat()
    batches = indices.batch(batch_size, drop_remainder=drop_remainder).map(
        lambda index: tf.nest.map_structure(lambda t: tf.gather(t, index), tensors),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return batches.prefetch(tf.data.AUTOTUNE)
