"""Registers the GAN architectures, the adversarial objective and `kplug sample`."""

from __future__ import annotations

import kplug
from kplug_gan.adversarial import Adversarial, AdversarialConfig
from kplug_gan.dcgan import DCGANConfig, build_dcgan, estimate_dcgan
from kplug_gan.gan import GANConfig, build_gan, estimate_gan
from kplug_gan.sample import configure


@kplug.hookimpl
def register_architectures(register):
    register(
        "gan",
        build_gan,
        config=GANConfig,
        summary="the seed's GAN: Dense generator from 100-d noise, Conv2D/pool discriminator",
        estimate=estimate_gan,
    )
    register(
        "dcgan",
        build_dcgan,
        config=DCGANConfig,
        summary="DCGAN: Conv2DTranspose/BatchNorm generator, strided Conv2D discriminator",
        estimate=estimate_dcgan,
    )


@kplug.hookimpl
def register_objectives(register):
    register(
        "adversarial",
        Adversarial,
        config=AdversarialConfig,
        summary="GAN training: discriminator and generator, two optimizers; sample grids "
        "and a classifier's score each epoch",
    )


@kplug.hookimpl
def register_commands(register):
    register(
        "sample",
        configure,
        summary="draw new samples from a GAN run into a PNG grid: kplug sample RUN_DIR",
    )


@kplug.hookimpl
def keras_objects():
    from kplug_gan.gan_model import GAN

    return {"kplug_gan>GAN": GAN}
