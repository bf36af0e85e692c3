"""`digits`: scikit-learn's 8x8 handwritten digits (1,797 images, 16 grey levels)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

import kplug
from kplug_data.arrays import ArrayFilters, apply_filters, fixed_split

EXAMPLES = 1797
TEST_FRACTION = 0.2


class DigitsConfig(ArrayFilters):
    normalize: bool = Field(True, description="scale pixels from 0..16 to 0..1")
    split_seed: int = Field(0, description="seed of the fixed train/test split")


def load_digits(config: DigitsConfig, ctx: kplug.RunContext) -> kplug.Data:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = bunch.images.astype(np.float32)[..., None]
    if config.normalize:
        x /= 16.0
    y = bunch.target.astype(np.int32)
    spec = kplug.DataSpec(
        input_shape=(8, 8, 1),
        num_classes=10,
        class_names=[str(d) for d in range(10)],
        extras={
            "preprocessing": {
                "pixels": "0..16 grey levels",
                "scale": 1 / 16 if config.normalize else 1.0,
            }
        },
    )
    return apply_filters(fixed_split(x, y, TEST_FRACTION, config.split_seed, spec), config)


def estimate_digits(config: DigitsConfig, facts: dict) -> dict:
    if config.classes is not None or config.fraction is not None:
        return {"input_shape": [8, 8, 1], "num_classes": len(config.classes or range(10))}
    test = 359  # sum over classes of round(0.2 * class count)
    return {
        "train_examples": EXAMPLES - test,
        "test_examples": test,
        "input_shape": [8, 8, 1],
        "num_classes": 10,
    }
