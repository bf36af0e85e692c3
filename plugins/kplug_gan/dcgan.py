"""`dcgan`: a deep convolutional GAN (Radford et al. 2015, as in the TensorFlow DCGAN
tutorial), sized for MNIST by default.

Generator: noise - Dense(7*7*128) - BatchNorm - LeakyReLU - Reshape(7, 7, 128) -
Conv2DTranspose(64, 5x5, stride 2) - BatchNorm - LeakyReLU - Conv2DTranspose(1, 5x5,
stride 2, tanh): 28x28x1. Discriminator: Conv2D(64, 5x5, stride 2) - LeakyReLU - Dropout -
Conv2D(128, 5x5, stride 2) - LeakyReLU - Dropout - Flatten - Dense(1, sigmoid). Every
stride-2 layer doubles (generator) or halves (discriminator) the image size.
"""

from __future__ import annotations

import math

from pydantic import Field, PositiveInt, field_validator

import kplug
from kplug_gan.gan import image_shape


class DCGANConfig(kplug.Config):
    latent_dim: PositiveInt = Field(100, description="size of the generator's noise input")
    generator_filters: list[PositiveInt] = Field(
        [128, 64],
        description="channels of the first feature map and of each upsampling but the last; "
        "the image is upsampled len(generator_filters) times by 2",
    )
    discriminator_filters: list[PositiveInt] = Field(
        [64, 128], description="filters of each stride-2 Conv2D"
    )
    kernel_size: PositiveInt = 5
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="after each discriminator conv")

    @field_validator("generator_filters", "discriminator_filters")
    @classmethod
    def _at_least_one(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("give at least one layer, e.g. [128, 64]")
        return value


def _start_size(shape: tuple[int, int, int], upsamplings: int) -> tuple[int, int]:
    factor = 2**upsamplings
    height, width, _ = shape
    if height % factor or width % factor:
        raise kplug.DataError(
            f"dcgan upsamples {upsamplings} times by 2, so the image height and width must be "
            f"multiples of {factor}; the data's images are {height}x{width}. Change "
            "model.generator_filters (one entry per upsampling)."
        )
    return height // factor, width // factor


def build_dcgan(config: DCGANConfig, ctx: kplug.RunContext) -> dict:
    import keras
    from keras import layers

    shape = image_shape(ctx, "dcgan")
    filters = config.generator_filters
    height, width = _start_size(shape, len(filters))
    k = config.kernel_size

    # === Generator ===
    noise = keras.Input(shape=(config.latent_dim,), name="noise")
    x = layers.Dense(height * width * filters[0], use_bias=False, name="project")(noise)
    x = layers.BatchNormalization(name="project_bn")(x)
    x = layers.LeakyReLU(0.2, name="project_act")(x)
    x = layers.Reshape((height, width, filters[0]), name="feature_map")(x)
    for index, channels in enumerate(filters[1:], start=1):
        x = layers.Conv2DTranspose(channels, k, strides=2, padding="same", use_bias=False,
                                   name=f"up{index}")(x)  # fmt: skip
        x = layers.BatchNormalization(name=f"up{index}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"up{index}_act")(x)
    images = layers.Conv2DTranspose(shape[-1], k, strides=2, padding="same", activation="tanh",
                                    dtype="float32", name="image")(x)  # fmt: skip
    generator = keras.Model(noise, images, name="generator")

    # === Discriminator ===
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for index, channels in enumerate(config.discriminator_filters, start=1):
        x = layers.Conv2D(channels, k, strides=2, padding="same", name=f"conv{index}")(x)
        x = layers.LeakyReLU(0.2, name=f"conv{index}_act")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"dropout{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    real = layers.Dense(1, activation="sigmoid", dtype="float32", name="real")(x)
    discriminator = keras.Model(inputs, real, name="discriminator")
    return {"generator": generator, "discriminator": discriminator}


def estimate_dcgan(config: DCGANConfig, facts: dict) -> dict:
    """The exact parameter count of both networks, from the input shape."""
    shape = facts.get("input_shape")
    if not shape or len(shape) not in (2, 3):
        return {}
    height, width, channels = (*shape, 1) if len(shape) == 2 else shape
    filters, k = config.generator_filters, config.kernel_size
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        return {}
    first = (height // factor) * (width // factor) * filters[0]
    generator = config.latent_dim * first + 4 * first
    for previous, current in zip(filters[:-1], filters[1:], strict=True):
        generator += k * k * previous * current + 4 * current
    generator += k * k * filters[-1] * channels + channels
    discriminator, previous = 0, channels
    for current in config.discriminator_filters:
        discriminator += k * k * previous * current + current
        height, width, previous = math.ceil(height / 2), math.ceil(width / 2), current
    discriminator += height * width * previous + 1
    return {
        "parameters": generator + discriminator,
        "generator_parameters": generator,
        "discriminator_parameters": discriminator,
    }
