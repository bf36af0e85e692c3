"""Registers the built-in vision architectures."""

from __future__ import annotations

import kplug
from kplug_vision.cnn import CNNConfig, build_cnn, estimate_cnn


@kplug.hookimpl
def register_architectures(register):
    register(
        "cnn",
        build_cnn,
        config=CNNConfig,
        summary="convolution/pooling blocks, Dense layers and a softmax head (the seed's CNN)",
        estimate=estimate_cnn,
    )
