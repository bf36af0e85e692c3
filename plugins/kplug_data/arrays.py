"""Splitting in-memory arrays into the fixed train/test splits of the embedded datasets."""

from __future__ import annotations

import numpy as np

from kplug import Data, DataSpec


def fixed_split(
    x: np.ndarray, y: np.ndarray, test_fraction: float, split_seed: int, spec: DataSpec
) -> Data:
    """A seeded, class-stratified train/test split that does not depend on the run's seed,
    so every run of a dataset is scored on the same test examples."""
    rng = np.random.default_rng(split_seed)
    test_index = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        n_test = int(round(len(members) * test_fraction))
        test_index.append(rng.permutation(members)[:n_test])
    test = np.zeros(len(y), dtype=bool)
    test[np.concatenate(test_index)] = True
    train_order = rng.permutation(np.flatnonzero(~test))
    test_order = rng.permutation(np.flatnonzero(test))
    return Data(
        train=(x[train_order], y[train_order]),
        test=(x[test_order], y[test_order]),
        spec=spec,
    )
