"""Batched `tf.data` pipelines from kplug splits (NumPy tuples or unbatched datasets)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kplug import count_examples, is_array_split
from kplug_distribute.array_batches import array_batches, tensorflow_installed


def make_dataset(
    split: Any,
    *,
    batch_size: int,
    training: bool,
    shuffle: bool = True,
    seed: int = 0,
    start_step: int = 0,
    sharded: bool = False,
    drop_remainder: bool = False,
) -> Any:
    """Batch and prefetch a split; for training, shuffle it, seeded, anew every epoch.

    A training split of known size becomes an endless stream of epochs, epoch `e` being
    the split in the order of `(seed, e)`, batched on its own (a last partial batch per
    epoch, as in Keras): pass `steps_per_epoch(...)` batches per epoch to `fit`. The order
    depends only on the seed and the epoch, never on how many iterators were made before
    (Keras and tf.distribute read one batch ahead to build the model), so every strategy
    sees the same batches; a resumed run starts at the batch `start_step`.

    NumPy splits are shuffled as indices and gathered a whole batch at a time, which is
    as fast as Keras' own array adapter; datasets are shuffled element-wise.

    Args:
        split: a NumPy `(x, y[, sample_weight])` tuple or an unbatched `tf.data.Dataset`.
        batch_size: the global batch size.
        training: the endless shuffled stream (or one reshuffled pass when the size of a
            dataset is unknown); otherwise one pass in order.
        seed: the shuffle seed, so a run's data order is reproducible.
        start_step: the number of training batches already consumed: the stream starts
            with the next one (a resumed run continues the data where it stopped).
        sharded: set the auto-shard policy for a `tf.distribute` strategy that splits the
            data between workers.
        drop_remainder: drop a last partial batch (devices that need equal shards).
    """
    streamed = hasattr(split, "gather")  # e.g. token windows memory-mapped from shards
    if (is_array_split(split) or streamed) and not sharded and not tensorflow_installed():
        return array_batches(split, batch_size=batch_size, training=training, shuffle=shuffle,
                             seed=seed, start_step=start_step,
                             drop_remainder=drop_remainder)  # fmt: skip
    import tensorflow as tf

    known = count_examples(split) is not None
    if is_array_split(split) or streamed:
        n, gather = _gatherer(split)

        def epoch_of(epoch):
            indices = tf.range(n, dtype=tf.int64)
            if shuffle:
                key = tf.stack([tf.constant(seed, tf.int64), epoch])
                indices = tf.random.experimental.stateless_shuffle(indices, seed=key)
            return _batched(tf.data.Dataset.from_tensor_slices(indices))

        def _batched(indices):
            return indices.batch(batch_size, drop_remainder=drop_remainder).map(
                gather,
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )

        if training:
            dataset = _from_step(epoch_of, start_step, split, batch_size, drop_remainder)
        else:
            dataset = _batched(tf.data.Dataset.range(n))
        policy = "DATA"
    else:
        buffer = _buffer(split)

        def epoch_of(epoch):
            data = split.shuffle(buffer, seed=seed * 1_000_003 + epoch) if shuffle else split
            return data.batch(batch_size, drop_remainder=drop_remainder)

        if training and known:
            dataset = _from_step(epoch_of, start_step, split, batch_size, drop_remainder)
        elif training and shuffle:
            dataset = split.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).batch(
                batch_size, drop_remainder=drop_remainder
            )
        else:
            dataset = split.batch(batch_size, drop_remainder=drop_remainder)
        policy = "AUTO"
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return _shard_by(dataset, policy) if sharded else dataset


def tensorflow_order(examples: int, seed: int, epoch: int) -> np.ndarray:
    """The examples of training epoch `epoch` in the order `make_dataset`'s `tf.data`
    pipeline gives them (TensorFlow's stateless shuffle seeded by `(seed, epoch)`)."""
    import tensorflow as tf

    key = tf.constant([seed, epoch], tf.int64)
    indices = tf.range(examples, dtype=tf.int64)
    return tf.random.experimental.stateless_shuffle(indices, seed=key).numpy()


def _gatherer(split: Any) -> tuple[int, Any]:
    """The examples and a function from a batch of indices to the batch. A streamed split
    (an object with `gather(indices) -> arrays` and `output_signature`, e.g. token windows
    memory-mapped from shards) is gathered in NumPy: the same indices, the same batches as
    its arrays held in memory. `gather` may answer a nested structure (`(x, y)` with `x` a
    dict of named inputs); `output_signature` is the same structure of `(shape, dtype)`."""
    import tensorflow as tf

    if is_array_split(split):
        tensors = tf.nest.map_structure(tf.convert_to_tensor, split)
        n = int(tf.nest.flatten(tensors)[0].shape[0])
        return n, lambda index: tf.nest.map_structure(lambda t: tf.gather(t, index), tensors)
    structure = _structure(split.output_signature)  # leaves: (shape, dtype) pairs
    leaves = tf.nest.flatten(structure)
    dtypes = [tf.as_dtype(leaf.dtype) for leaf in leaves]

    def flat_gather(index):
        return tf.nest.flatten(split.gather(index))

    def gather(index):
        parts = tf.numpy_function(flat_gather, [index], dtypes, stateful=False)
        for part, leaf in zip(parts, leaves, strict=True):
            part.set_shape((None, *leaf.shape))
        return tf.nest.pack_sequence_as(structure, parts)

    return count_examples(split), gather


class _Leaf:
    """A `(shape, dtype)` pair of an output signature: an object `tf.nest` does not open."""

    def __init__(self, shape: tuple[int, ...], dtype: str):
        self.shape, self.dtype = shape, dtype


def _structure(signature: Any) -> Any:
    """`signature` (tuples and dicts whose leaves are `(shape, dtype)` pairs) with each
    pair made a `_Leaf`: `tf.nest` flattens it in the order it flattens `gather`'s arrays."""
    if isinstance(signature, dict):
        return {key: _structure(value) for key, value in signature.items()}
    if len(signature) == 2 and isinstance(signature[1], str):
        return _Leaf(*signature)
    return tuple(_structure(part) for part in signature)


def steps_per_epoch(split: Any, batch_size: int, drop_remainder: bool = False) -> int | None:
    """Batches in one epoch of `split`; None when its size is unknown."""
    n = count_examples(split)
    if n is None:
        return None
    return n // batch_size if drop_remainder else -(-n // batch_size)


def _from_step(
    epoch_of: Any, start_step: int, split: Any, batch_size: int, drop_remainder: bool
) -> Any:
    """The endless stream of epochs, from the batch after the first `start_step`."""
    import tensorflow as tf

    per_epoch = max(1, steps_per_epoch(split, batch_size, drop_remainder) or 1)
    epochs = tf.data.Dataset.counter(start=start_step // per_epoch, dtype=tf.int64)
    return epochs.flat_map(epoch_of).skip(start_step % per_epoch)


def _buffer(dataset: Any) -> int:
    cardinality = int(dataset.cardinality())
    return cardinality if 0 < cardinality <= 100_000 else 10_000


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
