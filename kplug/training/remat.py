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


def outermost_only(network) -> list[str]:
    """Keep rematerialization on the outermost layers of `network` only; returns their
    names.

    On TensorFlow each rematerialized call is a `tf.recompute_grad`, and a
    `tf.recompute_grad` nested in another drops or corrupts the gradients of the inner
    layers' weights (measured on keras-hub's GPT2Backbone under `keras.RematScope(mode=
    "full")`: relative differences up to 100%, layer-norm gammas without gradient). With
    one level, a transformer block recomputed as a whole, the gradients equal the plain
    model's. Functional and Sequential models are containers: their layers are the
    outermost ones. Mode "activations" rematerializes only activation functions, never a
    layer's whole call, so it is left as it is.
    """
    import keras

    kept = []

    def visit(layers) -> None:
        for layer in layers:
            children = layer._flatten_layers(include_self=False, recursive=False)
            if isinstance(layer, keras.Model) and layer.layers:  # a container
                layer._remat_mode = None
                visit(children)
            elif _rematerializes(layer):
                kept.append(layer.name)
                for inner in layer._flatten_layers(include_self=False, recursive=True):
                    inner._remat_mode = None
            else:  # not rematerialized itself: a layer inside it may be
                visit(children)

    visit(network._flatten_layers(include_self=False, recursive=False))
    return kept


def _rematerializes(layer) -> bool:
    """Whether Keras would wrap this layer's whole call in `remat`."""
    mode = layer._remat_mode
    if mode is None or mode.mode == "activations":
        return False
    if mode.mode == "list_of_layers":
        return layer.name in mode.layer_names
    return True  # full; larger_than decides per call, by the output's size
