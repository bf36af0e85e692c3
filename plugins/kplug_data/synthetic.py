"""`synthetic`: random inputs with labels a fixed random projection makes learnable."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveInt

import kplug


class SyntheticConfig(kplug.Config):
    shape: list[PositiveInt] = Field([28, 28, 1], description="shape of one input")
    num_classes: PositiveInt = Field(10, description="classes (classification)")
    task: Literal["classification", "regression"] = "classification"
    train_examples: PositiveInt = 1024
    validation_examples: NonNegativeInt = 128
    test_examples: NonNegativeInt = 128
    data_seed: int = Field(0, description="seed of the generated data")


def load_synthetic(config: SyntheticConfig, ctx: kplug.RunContext) -> kplug.Data:
    rng = np.random.default_rng(config.data_seed)
    features = int(np.prod(config.shape))
    outputs = config.num_classes if config.task == "classification" else 1
    projection = rng.standard_normal((features, outputs)).astype(np.float32)

    def split(n: int):
        if n == 0:
            return None
        x = rng.standard_normal((n, *config.shape)).astype(np.float32)
        scores = x.reshape(n, -1) @ projection / np.sqrt(features)
        if config.task == "classification":
            return x, scores.argmax(axis=1).astype(np.int32)
        return x, scores[:, 0]

    spec = kplug.DataSpec(
        input_shape=tuple(config.shape),
        num_classes=config.num_classes if config.task == "classification" else None,
    )
    return kplug.Data(
        train=split(config.train_examples),
        validation=split(config.validation_examples),
        test=split(config.test_examples),
        spec=spec,
    )


def estimate_synthetic(config: SyntheticConfig, facts: dict) -> dict:
    return {
        "train_examples": config.train_examples,
        "validation_examples": config.validation_examples,
        "test_examples": config.test_examples,
        "input_shape": list(config.shape),
        "num_classes": config.num_classes if config.task == "classification" else None,
    }
