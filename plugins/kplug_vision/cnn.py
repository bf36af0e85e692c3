"""`cnn`: the seed document's convolutional classifier, every size configurable.

Default: Conv2D(32, 3x3, relu) - MaxPool(2) - Conv2D(64) - MaxPool(2) - Conv2D(64) -
Flatten - Dense(64, relu) - Dense(classes, softmax).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, field_validator

import kplug
from kplug import BASE_LAYERS_KEY
from kplug_vision.augment import AugmentConfig, augment

# Names of the layers of the convolution blocks: conv1, bn1, act1, pool1, ...
BASE_PREFIXES = ("conv", "bn", "act", "pool")


class CNNConfig(kplug.Config):
    filters: list[PositiveInt] = Field([32, 64, 64], description="filters of each Conv2D")
    kernel_size: PositiveInt = 3
    pool_size: PositiveInt = Field(2, description="MaxPooling2D after each conv but the last")
    pool_after_last: bool = False
    padding: Literal["valid", "same"] = "valid"
    activation: str = "relu"
    batch_norm: bool = Field(False, description="BatchNormalization after each conv")
    dense_units: list[PositiveInt] | PositiveInt = Field(64, description="hidden Dense layers")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the output layer")
    output_activation: Literal["softmax", "linear"] = Field(
        "softmax", description="linear: logits (use objective from_logits: true)"
    )
    augment: AugmentConfig | None = Field(
        None, description="random flips/rotations/zooms/translations, in training only"
    )

    @field_validator("filters")
    @classmethod
    def _at_least_one(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("give at least one conv layer, e.g. [32, 64]")
        return value


def _dense_units(config: CNNConfig) -> list[int]:
    units = config.dense_units
    return [units] if isinstance(units, int) else list(units)


def build_cnn(config: CNNConfig, ctx: kplug.RunContext):
    import keras
    from keras import layers

    spec = ctx.spec
    shape = _image_shape(spec.input_shape)
    if spec.num_classes is None:
        raise kplug.DataError("cnn needs a classification dataset (the spec has no num_classes)")

    # === Layers and functional model ===
    inputs = keras.Input(shape=tuple(spec.input_shape), name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape(shape, name="add_channel")(inputs)
    x = augment(x, config.augment)
    for index, filters in enumerate(config.filters, start=1):
        x = layers.Conv2D(
            filters,
            config.kernel_size,
            padding=config.padding,
            activation=None if config.batch_norm else config.activation,
            name=f"conv{index}",
        )(x)
        if config.batch_norm:
            x = layers.BatchNormalization(name=f"bn{index}")(x)
            x = layers.Activation(config.activation, name=f"act{index}")(x)
        if index < len(config.filters) or config.pool_after_last:
            x = layers.MaxPooling2D(config.pool_size, name=f"pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    for index, units in enumerate(_dense_units(config), start=1):
        x = layers.Dense(units, activation=config.activation, name=f"dense{index}")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    x = layers.Dense(spec.num_classes, name="logits")(x)
    # Float32 output keeps the loss stable under mixed precision.
    outputs = layers.Activation(config.output_activation, dtype="float32", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="cnn")
    # `model.freeze: base` freezes the convolution blocks (kplug/phases.py).
    ctx.state[BASE_LAYERS_KEY] = [
        layer.name for layer in model.layers if layer.name.startswith(BASE_PREFIXES)
    ]
    return model


def _image_shape(shape) -> tuple[int, int, int]:
    if shape is None or len(shape) not in (2, 3):
        raise kplug.DataError(
            f"cnn needs image inputs of shape (height, width[, channels]); the data has {shape}"
        )
    return tuple(shape) if len(shape) == 3 else (*shape, 1)


def estimate_cnn(config: CNNConfig, facts: dict) -> dict:
    """The exact parameter count, computed from the input shape without building."""
    shape = facts.get("input_shape")
    classes = facts.get("num_classes")
    if not shape or not classes:
        return {}
    height, width, channels = _image_shape(shape)
    k, params = config.kernel_size, 0
    for index, filters in enumerate(config.filters, start=1):
        params += k * k * channels * filters + filters
        if config.batch_norm:
            params += 4 * filters
        if config.padding == "valid":
            height, width = height - k + 1, width - k + 1
        channels = filters
        if index < len(config.filters) or config.pool_after_last:
            height, width = height // config.pool_size, width // config.pool_size
        if height <= 0 or width <= 0:
            return {}
    features = height * width * channels
    for units in _dense_units(config):
        params += features * units + units
        features = units
    params += features * classes + classes
    return {"parameters": params}
