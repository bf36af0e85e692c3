"""Operations on data splits that work for NumPy `(x, y)` tuples and `tf.data.Dataset`s,
without importing TensorFlow: datasets are handled through their own methods."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_arrays(split: Any) -> bool:
    """Whether a split is NumPy arrays `(x, y[, sample_weight])` rather than a dataset."""
    return isinstance(split, tuple)


def _first_array(x: Any) -> np.ndarray:
    return next(iter(x.values())) if isinstance(x, dict) else x


def _index(x: Any, index: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, dict):
        return {k: v[index] for k, v in x.items()}
    return x[index]


def count(split: Any) -> int | None:
    """Number of examples, or None when a dataset's size is unknown."""
    if split is None:
        return 0
    if is_arrays(split):
        return len(_first_array(split[0]))
    cardinality = int(split.cardinality())
    return cardinality if cardinality >= 0 else None


def take(split: Any, n: int) -> Any:
    """The first `n` examples."""
    if split is None:
        return None
    if is_arrays(split):
        return tuple(_index(part, slice(0, n)) for part in split)
    return split.take(n)


def select(split: Any, index: np.ndarray) -> Any:
    """NumPy splits only: the examples at `index`."""
    return tuple(_index(part, index) for part in split)


def split_off(split: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """Hold out `fraction` of a split, chosen by a seeded shuffle: (rest, held_out)."""
    n = count(split)
    if n is None:
        raise ValueError("cannot split a dataset of unknown size; give it a validation split")
    held = int(round(n * fraction))
    if is_arrays(split):
        order = np.random.default_rng(seed).permutation(n)
        return select(split, np.sort(order[held:])), select(split, np.sort(order[:held]))
    shuffled = split.shuffle(n, seed=seed, reshuffle_each_iteration=False)
    return shuffled.skip(held), shuffled.take(held)
