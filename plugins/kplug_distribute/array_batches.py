"""`ArrayBatches`: the batches of `make_dataset` for NumPy splits, without TensorFlow.

Where TensorFlow is not installed (a `kplug[jax]` install, an accelerator machine with JAX
only), NumPy splits are batched by a `keras.utils.PyDataset` with the same contract as the
`tf.data` pipeline: a training stream of endless epochs, epoch `e` in a permutation seeded
by `(seed, e)`, starting at batch `start_step`; evaluation batches in order. The order is
NumPy's permutation, not TensorFlow's, so the two installs see different (each
reproducible) orders.

The same batches serve the processes of a multi-process JAX run: with `share=(i, n)`
process `i` reads only the `i`-th of `n` equal parts of every global batch (Keras assembles
the global batch from the processes' parts), in an `epoch_order` every process computes
alike (`input_pipeline.tensorflow_order` where TensorFlow is installed: the order of the
`tf.data` pipeline, so the run sees the batches of a single process). A streamed split (an
object with `gather(indices)`, e.g. token windows memory-mapped from shards) is gathered
a part at a time: each process reads only its own examples.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from kplug import count_examples, select_examples


def tensorflow_installed() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ImportError:  # an import hook that refuses it: as good as missing
        return False


def array_batches(
    split: Any,
    *,
    batch_size: int,
    training: bool,
    shuffle: bool = True,
    seed: int = 0,
    start_step: int = 0,
    drop_remainder: bool = False,
    share: tuple[int, int] = (0, 1),
    epoch_order: Callable[[int, int, int], np.ndarray] | None = None,
) -> Any:
    """A `keras.utils.PyDataset` of the batches of a NumPy `(x, y[, weights])` split or a
    streamed one (`gather`).

    Args:
        share: `(i, n)`: only the `i`-th of `n` equal parts of each batch (process `i` of
            `n`); every batch must split evenly.
        epoch_order: `(examples, seed, epoch) -> permutation` of a shuffled training epoch;
            NumPy's `numpy_order` by default.
    """
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.examples = count_examples(split)
            self.per_epoch = max(1, _batches(self.examples, batch_size, drop_remainder))
            self._order: tuple[int, np.ndarray] | None = None

        @property
        def num_batches(self) -> int | None:
            return None if training else _batches(self.examples, batch_size, drop_remainder)

        def __getitem__(self, index: int) -> tuple:
            if not training:
                indices = np.arange(self.examples)[_window(index, batch_size)]
                return _select(split, _part(indices, share))
            epoch, batch = divmod(start_step + index, self.per_epoch)
            order = self._epoch_order(epoch)
            return _select(split, _part(order[_window(batch, batch_size)], share))

        def _epoch_order(self, epoch: int) -> np.ndarray:
            if self._order is None or self._order[0] != epoch:
                order = np.arange(self.examples)
                if shuffle:
                    order = (epoch_order or numpy_order)(self.examples, seed, epoch)
                self._order = (epoch, order)
            return self._order[1]

    return ArrayBatches()


def numpy_order(examples: int, seed: int, epoch: int) -> np.ndarray:
    """The examples of epoch `epoch` in NumPy's permutation seeded by `(seed, epoch)`."""
    return np.random.default_rng([seed, epoch]).permutation(examples)


def _part(indices: np.ndarray, share: tuple[int, int]) -> np.ndarray:
    """The `share[0]`-th of `share[1]` equal consecutive parts of a batch's indices."""
    part, parts = share
    return indices.reshape(parts, -1)[part]


def _select(split: Any, index: np.ndarray) -> tuple:
    """The examples at `index`: of NumPy arrays, or gathered by a streamed split (an object
    with `gather`, e.g. token windows memory-mapped from shards)."""
    return split.gather(index) if hasattr(split, "gather") else select_examples(split, index)


def _window(batch: int, batch_size: int) -> slice:
    return slice(batch * batch_size, (batch + 1) * batch_size)


def _batches(examples: int, batch_size: int, drop_remainder: bool) -> int:
    return examples // batch_size if drop_remainder else -(-examples // batch_size)
