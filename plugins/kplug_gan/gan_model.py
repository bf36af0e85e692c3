"""`GAN`: a generator and a discriminator trained against each other, as one Keras model.

Written after the Keras 3 example "DCGAN overriding `Model.train_step`": each step first
trains the discriminator on a batch of real and a batch of generated images, then the
generator through the (unchanged) discriminator, each with its own optimizer. The seed's
Keras 2 trick (`discriminator.trainable = False` before compiling the combined model) is
not needed and does not work in Keras 3: here only the generator's variables get the
generator's gradients.

On JAX, whose Keras trainer runs stateless steps (`train_step(state, data)` returns the
new state), the same step is written with `stateless_call` and `stateless_apply` on
explicit variable values, as Keras' "customizing fit() with JAX" guide does; the two
optimizers travel in the state as one `PairedOptimizer`.
"""

from __future__ import annotations

import keras
from keras import ops

from kplug_gan.paired_optimizer import PairedOptimizer


@keras.saving.register_keras_serializable(package="kplug_gan")
class GAN(keras.Model):
    """A generator and a discriminator with their own optimizers.

    Args:
        generator: a model from noise `(batch, latent_dim)` to images in [-1, 1].
        discriminator: a model from images to the probability that they are real,
            `(batch, 1)`.
        label_smoothing: the discriminator's target for real images is
            `1 - label_smoothing` (one-sided smoothing); fakes are always 0.
        generator_ema: when above 0, the momentum of an exponential moving average of
            the generator's trainable weights, updated after every generator step;
            `swap_ema()` exchanges the averaged and the current weights (sampling with the
            average), `use_ema()` keeps the average. 0: no average.
        **kwargs: passed to `keras.Model`.

    Call arguments:
        noise: `(batch, latent_dim)` noise; returns the generator's images.

    Example:
    ```python
    gan = GAN(generator, discriminator)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    gan.fit(images_in_minus_one_to_one, epochs=20)
    ```
    """

    def __init__(self, generator, discriminator, label_smoothing: float = 0.0,
                 generator_ema: float = 0.0, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.label_smoothing = label_smoothing
        self.generator_ema = float(generator_ema)
        self.ema_weights = []
        if self.generator_ema:
            self.ema_weights = [
                keras.Variable(
                    ops.convert_to_numpy(w), trainable=False, name=f"ema_{w.name}"
                )  # fmt: skip
                for w in generator.trainable_weights
            ]
        self.latent_dim = int(generator.inputs[0].shape[-1])
        # Unseeded: drawn from the global seed that `keras.utils.set_random_seed` sets.
        self.seed_generator = keras.random.SeedGenerator()
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_accuracy_tracker = keras.metrics.Mean(name="d_accuracy")
        # Both networks are functional models built on their inputs.
        self.built = True

    def call(self, noise, training=False):
        return self.generator(noise, training=training)

    def compile(self, d_optimizer=None, g_optimizer=None, jit_compile="auto", **kwargs):
        """Args: d_optimizer, g_optimizer: the two networks' optimizers (two instances)."""
        paired = PairedOptimizer(d_optimizer, g_optimizer, self.discriminator, self.generator)
        super().compile(optimizer=paired, jit_compile=jit_compile, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = keras.losses.BinaryCrossentropy()

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_accuracy_tracker]

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        return self._tensorflow_train_step(*args)

    def test_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_test_step(*args)
        return self._test_logs(*args)

    def _tensorflow_train_step(self, data):
        import tensorflow as tf

        real = _images(data)
        batch_size = ops.shape(real)[0]
        real_targets = ops.full((batch_size, 1), 1.0 - self.label_smoothing)
        fake_targets = ops.zeros((batch_size, 1))

        noise = self._noise(batch_size)
        fake = self.generator(noise, training=True)
        with tf.GradientTape() as tape:
            real_scores = self.discriminator(real, training=True)
            fake_scores = self.discriminator(fake, training=True)
            d_loss = self.loss_fn(real_targets, real_scores) + self.loss_fn(
                fake_targets, fake_scores
            )
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, weights), weights, strict=True))

        # The generator wants the discriminator to call its images real (target 1).
        noise = self._noise(batch_size)
        with tf.GradientTape() as tape:
            scores = self.discriminator(self.generator(noise, training=True), training=True)
            g_loss = self.loss_fn(ops.ones((batch_size, 1)), scores)
        weights = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights, strict=True))
        if self.ema_weights:
            momentum = self.generator_ema
            for average, weight in zip(self.ema_weights, weights, strict=True):
                average.assign(momentum * average + (1.0 - momentum) * weight)
        return self._track(d_loss, g_loss, real_scores, fake_scores)

    def swap_ema(self):
        """Exchanges the generator's weights and their moving average (no-op without one)."""
        if not self.ema_weights:
            return
        for average, weight in zip(self.ema_weights, self.generator.trainable_weights,
                                   strict=True):  # fmt: skip
            current = ops.convert_to_numpy(weight)
            # A copy: on JAX two variables must not share a buffer (Keras donates them).
            weight.assign(ops.copy(average.value))
            average.assign(current)

    def use_ema(self):
        """Gives the generator the moving average of its weights (no-op without one)."""
        if not self.ema_weights:
            return
        for average, weight in zip(self.ema_weights, self.generator.trainable_weights,
                                   strict=True):  # fmt: skip
            weight.assign(ops.copy(average.value))

    def _test_logs(self, data):
        real = _images(data)
        batch_size = ops.shape(real)[0]
        fake = self.generator(self._noise(batch_size), training=False)
        real_scores = self.discriminator(real, training=False)
        fake_scores = self.discriminator(fake, training=False)
        d_loss = self.loss_fn(ops.ones((batch_size, 1)), real_scores) + self.loss_fn(
            ops.zeros((batch_size, 1)), fake_scores
        )
        g_loss = self.loss_fn(ops.ones((batch_size, 1)), fake_scores)
        return self._track(d_loss, g_loss, real_scores, fake_scores)

    # === JAX: the same steps on explicit state ===

    def _jax_train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_values, metrics_values = state
        values = self._values_by_variable(trainable, non_trainable, metrics_values)
        d_optimizer_values, g_optimizer_values = self.optimizer.split(optimizer_values)
        generator, discriminator = self.generator, self.discriminator
        real = _images(data)
        batch_size = ops.shape(real)[0]
        real_targets = ops.full((batch_size, 1), 1.0 - self.label_smoothing)
        fake_targets = ops.zeros((batch_size, 1))
        with keras.StatelessScope(state_mapping=self._mapping(values)) as scope:
            noise, generator_noise = self._noise(batch_size), self._noise(batch_size)
        self._take_updates(values, scope)

        def of(variables):
            return [values[id(v)] for v in variables]

        fake, values_g_nt = generator.stateless_call(
            of(generator.trainable_variables), of(generator.non_trainable_variables), noise,
            training=True,
        )  # fmt: skip
        d_non_trainable = of(discriminator.non_trainable_variables)

        def d_loss_of(d_trainable):
            real_scores, d_nt = discriminator.stateless_call(
                d_trainable, d_non_trainable, real, training=True
            )
            fake_scores, d_nt = discriminator.stateless_call(d_trainable, d_nt, fake, training=True)
            d_loss = self.loss_fn(real_targets, real_scores) + self.loss_fn(
                fake_targets, fake_scores
            )
            return d_loss, (real_scores, fake_scores, d_nt)

        d_trainable = of(discriminator.trainable_variables)
        (d_loss, (real_scores, fake_scores, d_nt)), grads = jax.value_and_grad(
            d_loss_of, has_aux=True
        )(d_trainable)
        d_trainable, d_optimizer_values = self.d_optimizer.stateless_apply(
            d_optimizer_values, grads, d_trainable
        )

        # The generator wants the discriminator to call its images real (target 1).
        def g_loss_of(g_trainable):
            images, g_nt = generator.stateless_call(
                g_trainable, values_g_nt, generator_noise, training=True
            )
            scores, new_d_nt = discriminator.stateless_call(
                d_trainable, d_nt, images, training=True
            )
            return self.loss_fn(ops.ones((batch_size, 1)), scores), (g_nt, new_d_nt)

        g_trainable = of(generator.trainable_variables)
        (g_loss, (g_nt, d_nt)), grads = jax.value_and_grad(g_loss_of, has_aux=True)(g_trainable)
        g_trainable, g_optimizer_values = self.g_optimizer.stateless_apply(
            g_optimizer_values, grads, g_trainable
        )
        for variables, new in (
            (generator.trainable_variables, g_trainable),
            (generator.non_trainable_variables, g_nt),
            (discriminator.trainable_variables, d_trainable),
            (discriminator.non_trainable_variables, d_nt),
        ):
            values.update(zip(map(id, variables), new, strict=True))
        momentum = self.generator_ema
        for average, weight in zip(self.ema_weights, g_trainable, strict=True):
            values[id(average)] = momentum * values[id(average)] + (1.0 - momentum) * weight
        with keras.StatelessScope(state_mapping=self._mapping(values)) as scope:
            logs = self._track(d_loss, g_loss, real_scores, fake_scores)
        self._take_updates(values, scope)
        optimizer_values = [*d_optimizer_values, *g_optimizer_values]
        return logs, (of(self.trainable_variables), of(self.non_trainable_variables),
                      optimizer_values, of(self.metrics_variables))  # fmt: skip

    def _jax_test_step(self, state, data):
        trainable, non_trainable, metrics_values = state
        values = self._values_by_variable(trainable, non_trainable, metrics_values)
        with keras.StatelessScope(state_mapping=self._mapping(values)) as scope:
            logs = self._test_logs(data)
        self._take_updates(values, scope)
        return logs, tuple(
            [values[id(v)] for v in variables]
            for variables in (
                self.trainable_variables,
                self.non_trainable_variables,
                self.metrics_variables,
            )  # fmt: skip
        )

    def _values_by_variable(self, trainable, non_trainable, metrics_values) -> dict:
        """The state's values by `id` of their variable (a metric's variables may also be
        among the non-trainable ones: the metrics' values are the current ones)."""
        values = {}
        for variables, given in ((self.trainable_variables, trainable),
                                 (self.non_trainable_variables, non_trainable),
                                 (self.metrics_variables, metrics_values)):  # fmt: skip
            values.update(zip(map(id, variables), given, strict=True))
        return values

    def _all_variables(self) -> list:
        return [*self.trainable_variables, *self.non_trainable_variables, *self.metrics_variables]

    def _mapping(self, values: dict) -> list:
        return [(v, values[id(v)]) for v in self._all_variables()]

    def _take_updates(self, values: dict, scope) -> None:
        for variable in self._all_variables():
            new = scope.get_current_value(variable)
            if new is not None:
                values[id(variable)] = new

    def _noise(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def _track(self, d_loss, g_loss, real_scores, fake_scores):
        correct = ops.concatenate(
            [ops.cast(real_scores > 0.5, "float32"), ops.cast(fake_scores <= 0.5, "float32")]
        )
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_accuracy_tracker.update_state(ops.mean(correct))
        return {m.name: m.result() for m in self.metrics}

    # === Config ===

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "label_smoothing": self.label_smoothing,
            "generator_ema": self.generator_ema,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        if getattr(self, "d_optimizer", None) is None:
            return None
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
            g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
        )
        # Create the optimizers' variables now, so that their saved state loads into them.
        self.d_optimizer.build(self.discriminator.trainable_weights)
        self.g_optimizer.build(self.generator.trainable_weights)


def _images(data):
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x
