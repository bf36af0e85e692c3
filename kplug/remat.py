"""Gradient checkpointing (`train.remat`) that works on the TensorFlow backend.

Keras 3.15's TensorFlow `remat` is `tf.recompute_grad`, which refuses keyword arguments in
graph mode, and Keras calls rematerialized layers with `training=...`: every `fit` of a
model built under `keras.RematScope` fails (keras-team/keras#21207, open). kplug binds the
keyword arguments before handing the call to Keras' own `remat`, so the recomputation is
still TensorFlow's. Remove this once the upstream issue is fixed.
"""

from __future__ import annotations

import functools


def bind_keyword_arguments() -> None:
    """Make Keras' `remat` accept keyword arguments (idempotent)."""
    import keras
    from keras.src.backend.common import remat as keras_remat

    if keras.backend.backend() != "tensorflow" or getattr(keras_remat.remat, "kplug", False):
        return
    original = keras_remat.remat

    def remat(f):
        def call(*args, **kwargs):
            return original(functools.partial(f, **kwargs) if kwargs else f)(*args)

        return call

    remat.kplug = True
    keras_remat.remat = remat
