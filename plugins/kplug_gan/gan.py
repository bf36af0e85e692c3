"""`gan`: the seed document's generator and convolutional discriminator.

Generator: noise (100) - Dense(128, relu) - Dense(784, tanh) - Reshape(28, 28, 1).
Discriminator: Conv2D(64, 5x5) - MaxPool(2) - Conv2D(128, 5x5) - MaxPool(2) - Flatten -
Dense(1, sigmoid). The image size follows the data (`ctx.spec.input_shape`); every size is
configurable. The seed leaves the convolutions' padding and activation open: `valid` is
the Keras default (and a third of the cost of `same` on 28x28 images), `same` keeps small
images (8x8 digits) buildable, and leaky ReLU is the usual discriminator choice.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, PositiveInt

import kplug

# Set by objectives that train a {"generator", "discriminator"} network (adversarial).
ADVERSARIAL_STATE = "adversarial"


class GANConfig(kplug.Config):
    latent_dim: PositiveInt = Field(100, description="size of the generator's noise input")
    generator_units: list[PositiveInt] = Field([128], description="hidden Dense layers")
    generator_activation: str = "relu"
    discriminator_filters: list[PositiveInt] = Field(
        [64, 128], description="filters of each Conv2D, each followed by MaxPool(2)"
    )
    kernel_size: PositiveInt = 5
    padding: Literal["valid", "same"] = Field(
        "valid", description="of each Conv2D; same keeps small images (8x8 digits) buildable"
    )
    discriminator_activation: str = Field("leaky_relu", description="of each Conv2D")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="before the discriminator's Dense")


def image_shape(ctx: kplug.RunContext, architecture: str) -> tuple[int, int, int]:
    """The data's image shape `(height, width, channels)`, checked for a GAN."""
    if not ctx.state.get(ADVERSARIAL_STATE):
        raise kplug.RecipeError(
            f"model {architecture!r} builds a generator and a discriminator, which only an "
            "adversarial objective trains; set objective: {name: adversarial}."
        )
    shape = ctx.spec.input_shape
    if shape is None or len(shape) not in (2, 3) or None in shape:
        raise kplug.DataError(
            f"{architecture} generates images of shape (height, width[, channels]); the data "
            f"has inputs of shape {shape}. Use an image dataset such as mnist."
        )
    return tuple(shape) if len(shape) == 3 else (*shape, 1)


def build_gan(config: GANConfig, ctx: kplug.RunContext) -> dict:
    import keras
    from keras import layers

    shape = image_shape(ctx, "gan")
    if not estimate_gan(config, {"input_shape": shape}):
        raise kplug.DataError(
            f"gan: {shape[0]}x{shape[1]} images are too small for "
            f"{len(config.discriminator_filters)} {config.kernel_size}x{config.kernel_size} "
            f"convolutions with {config.padding!r} "
            "padding and 2x2 pooling; set model.padding: same or fewer discriminator_filters."
        )

    # === Generator ===
    noise = keras.Input(shape=(config.latent_dim,), name="noise")
    x = noise
    for index, units in enumerate(config.generator_units, start=1):
        x = layers.Dense(units, activation=config.generator_activation, name=f"dense{index}")(x)
    x = layers.Dense(math.prod(shape), activation="tanh", dtype="float32", name="pixels")(x)
    images = layers.Reshape(shape, name="image")(x)
    generator = keras.Model(noise, images, name="generator")

    # === Discriminator ===
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for index, filters in enumerate(config.discriminator_filters, start=1):
        x = layers.Conv2D(filters, config.kernel_size, padding=config.padding,
                          activation=config.discriminator_activation,
                          name=f"conv{index}")(x)  # fmt: skip
        x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    real = layers.Dense(1, activation="sigmoid", dtype="float32", name="real")(x)
    discriminator = keras.Model(inputs, real, name="discriminator")
    return {"generator": generator, "discriminator": discriminator}


def estimate_gan(config: GANConfig, facts: dict) -> dict:
    """The exact parameter count of both networks, from the input shape."""
    shape = facts.get("input_shape")
    if not shape or len(shape) not in (2, 3):
        return {}
    height, width, channels = (*shape, 1) if len(shape) == 2 else shape
    generator, features = 0, config.latent_dim
    for units in [*config.generator_units, height * width * channels]:
        generator += features * units + units
        features = units
    discriminator, k = 0, config.kernel_size
    for filters in config.discriminator_filters:
        discriminator += k * k * channels * filters + filters
        if config.padding == "valid":
            height, width = height - k + 1, width - k + 1
        height, width, channels = height // 2, width // 2, filters
        if height <= 0 or width <= 0:
            return {}
    discriminator += height * width * channels + 1
    return {
        "parameters": generator + discriminator,
        "generator_parameters": generator,
        "discriminator_parameters": discriminator,
    }
