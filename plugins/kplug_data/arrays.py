"""In-memory array datasets: their fixed train/test splits and the `classes:` and
`fraction:` filters they share."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import Field, field_validator

import kplug
from kplug import Data, DataSpec


class ArrayFilters(kplug.Config):
    """Options of the array datasets (mnist, digits) that select a subset."""

    classes: list[int] | None = Field(
        None,
        description="keep only these labels, relabelled 0..n-1 in the order given "
        "(classes: [5, 6, 7, 8, 9] makes 5 -> 0 ... 9 -> 4); null: every class",
    )
    fraction: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(
        None,
        description="keep this fraction of the training split, per class (stratified) and "
        "seeded by fraction_seed; the test split stays whole; null: all of it",
    )
    fraction_seed: int = Field(0, description="seed of the `fraction` subset")

    @field_validator("classes")
    @classmethod
    def _distinct(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or len(set(value)) != len(value)):
            raise ValueError("give distinct labels, at least one, e.g. classes: [5, 6, 7, 8, 9]")
        return value


def apply_filters(data: Data, config: ArrayFilters) -> Data:
    """`data` restricted to `config.classes` (relabelled) and `config.fraction` of train;
    the mapping and the counts go into the data report."""
    report: dict[str, Any] = dict(data.report)
    spec = data.spec
    if config.classes is not None:
        known = range(spec.num_classes or 0)
        unknown = [c for c in config.classes if c not in known]
        if unknown:
            raise kplug.DataError(
                f"data.classes: {unknown} are not labels of this dataset; its labels are "
                f"0..{len(known) - 1}."
            )
        mapping = {old: new for new, old in enumerate(config.classes)}
        names = spec.class_names or [str(c) for c in known]
        data = data.replace(
            train=_relabel(data.train, mapping), test=_relabel(data.test, mapping),
            spec=DataSpec(**{**spec.__dict__, "num_classes": len(mapping),
                             "class_names": [names[c] for c in config.classes]}),
        )  # fmt: skip
        label_map = {str(old): new for old, new in mapping.items()}
        report["classes"] = {"kept": list(config.classes), "label_map": label_map}
    if config.fraction is not None and config.fraction < 1.0:
        x, y = data.train
        before = len(y)
        index = stratified_fraction(y, config.fraction, config.fraction_seed)
        data = data.replace(train=(x[index], y[index]))
        report["fraction"] = {"of_train": config.fraction, "seed": config.fraction_seed,
                              "train_before": before, "train_after": len(index)}  # fmt: skip
    return data.replace(report=report)


def stratified_fraction(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of `fraction` of each class (at least one example), in a seeded order."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        keep = max(1, int(round(len(members) * fraction)))
        chosen.append(rng.permutation(members)[:keep])
    return rng.permutation(np.concatenate(chosen))


def _relabel(split: Any, mapping: dict[int, int]) -> Any:
    if split is None:
        return None
    x, y = split
    keep = np.isin(y, list(mapping))
    lookup = np.full(int(y.max()) + 1, -1, dtype=np.int32)
    for old, new in mapping.items():
        if old < len(lookup):
            lookup[old] = new
    return x[keep], lookup[y[keep]]


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
