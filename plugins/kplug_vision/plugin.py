"""Registers the built-in vision architectures."""

from __future__ import annotations

import kplug
from kplug_vision.applications import (
    KerasApplicationConfig,
    VGG16Config,
    build_keras_application,
    build_vgg16,
    estimate_vgg16,
)
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
    register(
        "vgg16",
        build_vgg16,
        config=VGG16Config,
        summary="keras.applications VGG16 without its top (imagenet, none or a weights file) "
        "under Flatten, Dense 256, Dense classes; for transfer learning",
        estimate=estimate_vgg16,
    )
    register(
        "keras_application",
        build_keras_application,
        config=KerasApplicationConfig,
        summary="any keras.applications backbone by name (ResNet50, MobileNetV2, ...) under "
        "the same input adaptation and head as vgg16",
    )


@kplug.hookimpl
def keras_objects():
    from kplug_vision.backbone_preprocess import BackbonePreprocess

    return {"kplug_vision>BackbonePreprocess": BackbonePreprocess}
