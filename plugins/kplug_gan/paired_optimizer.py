"""`PairedOptimizer`: a GAN's two optimizers as the one `Model.optimizer` Keras expects."""

from __future__ import annotations

import keras


class PairedOptimizer(keras.optimizers.Optimizer):
    """The discriminator's and the generator's optimizers, seen by Keras as one.

    Keras' JAX trainer threads the model's state through each (stateless) training step:
    the model's variables, `model.optimizer.variables` and the metrics'. A GAN has two
    optimizers; compiled with this one, both optimizers' variables travel with the step
    (the discriminator's first), are saved in step checkpoints and in model.keras, and
    restored. It applies no gradients itself: the GAN's train step calls each optimizer.

    Args:
        d_optimizer: the discriminator's optimizer.
        g_optimizer: the generator's optimizer.
        discriminator: the discriminator (its trainable weights build `d_optimizer`).
        generator: the generator (its trainable weights build `g_optimizer`).
    """

    def __init__(self, d_optimizer, g_optimizer, discriminator, generator):
        super().__init__(learning_rate=0.0, name="paired_optimizer")
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self._networks = (discriminator, generator)

    def build(self, variables):
        discriminator, generator = self._networks
        if not self.d_optimizer.built:
            self.d_optimizer.build(discriminator.trainable_variables)
        if not self.g_optimizer.built:
            self.g_optimizer.build(generator.trainable_variables)
        self.built = True

    @property
    def variables(self):
        return [*self.d_optimizer.variables, *self.g_optimizer.variables]

    def split(self, values: list) -> tuple[list, list]:
        """`values` (one per variable, in `variables` order) cut into the discriminator
        optimizer's and the generator optimizer's."""
        cut = len(self.d_optimizer.variables)
        return list(values[:cut]), list(values[cut:])

    def apply(self, grads, trainable_variables=None):
        raise NotImplementedError(
            "PairedOptimizer applies no gradients: call d_optimizer or g_optimizer"
        )

    def get_config(self):
        # The GAN saves its two optimizers in its compile config and compiles this anew.
        return {"name": self.name}
