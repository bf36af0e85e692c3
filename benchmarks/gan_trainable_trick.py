"""Why kplug_gan does not copy the seed's `discriminator.trainable = False` trick.

In Keras 2, `compile` froze the trainable state into each compiled model: the
discriminator compiled before the flag kept training, the combined model compiled after it
did not. Keras 3 reads `trainable` when a train function is traced, so the flag freezes the
discriminator in its own `train_on_batch` too.

Run: .venv/bin/python benchmarks/gan_trainable_trick.py
"""

import keras
import numpy as np

discriminator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
discriminator.compile(optimizer="sgd", loss="binary_crossentropy")
generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)])
discriminator.trainable = False  # the seed's trick, before compiling the combined model
noise = keras.Input((2,))
combined = keras.Model(noise, discriminator(generator(noise)))
combined.compile(optimizer="sgd", loss="binary_crossentropy")

before = discriminator.get_weights()[0].copy()
discriminator.train_on_batch(np.ones((8, 4)), np.ones((8, 1)))
changed = not np.allclose(before, discriminator.get_weights()[0])
print(
    f"keras {keras.__version__}: the discriminator's own train_on_batch changed its weights: "
    f"{changed}"
)
