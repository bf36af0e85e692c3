"""`ArrayBatches`: the batches of `make_dataset` for NumPy splits, without TensorFlow.

Where TensorFlow is not installed (a `kplug[jax]` install, an accelerator machine with JAX
only), NumPy splits are batched by a `keras.utils.PyDataset` with the same contract as the
`tf.data` pipeline: a training stream of endless epochs, epoch `e` in a permutation seeded
by `(seed, e)`, starting at batch `start_step`; evaluation batches in order. The order is
NumPy's permutation, not TensorFlow's, so the two installs see different (each
reproducible) orders.
"""

from __future__ import annotations

import importlib.util
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
) -> Any:
    """A `keras.utils.PyDataset` of the batches of a NumPy `(x, y[, weights])` split."""
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
                return _select(split, np.arange(self.examples)[_window(index, batch_size)])
            epoch, batch = divmod(start_step + index, self.per_epoch)
            order = self._epoch_order(epoch)
            return _select(split, order[_window(batch, batch_size)])

        def _epoch_order(self, epoch: int) -> np.ndarray:
            if self._order is None or self._order[0] != epoch:
                order = np.arange(self.examples)
                if shuffle:
                    order = np.random.default_rng([seed, epoch]).permutation(self.examples)
                self._order = (epoch, order)
            return self._order[1]

    return ArrayBatches()


def _select(split: Any, index: np.ndarray) -> tuple:
    """The examples at `index`: of NumPy arrays, or gathered by a streamed split (an object
    with `gather`, e.g. token windows memory-mapped from shards)."""
    return split.gather(index) if hasattr(split, "gather") else select_examples(split, index)


def _window(batch: int, batch_size: int) -> slice:
    return slice(batch * batch_size, (batch + 1) * batch_size)


def _batches(examples: int, batch_size: int, drop_remainder: bool) -> int:
    return examples // batch_size if drop_remainder else -(-examples // batch_size)
