"""Gradient checkpointing (`train.remat`) that works on the TensorFlow backend.

Keras' TensorFlow `remat` refuses keyword arguments (keras_compat binds them) and nested
rematerialization loses gradients (`outermost_only`).
"""

from __future__ import annotations

from kplug.training.keras_compat import (
    all_layers,
    bind_remat_keyword_arguments,
    child_layers,
    clear_remat_mode,
    remat_mode,
)


def bind_keyword_arguments() -> None:
    """Make Keras' `remat` accept keyword arguments (idempotent); see keras_compat."""
    bind_remat_keyword_arguments()


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
            children = child_layers(layer)
            if isinstance(layer, keras.Model) and layer.layers:  # a container
                clear_remat_mode(layer)
                visit(children)
            elif _rematerializes(layer):
                kept.append(layer.name)
                for inner in all_layers(layer):
                    clear_remat_mode(inner)
            else:  # not rematerialized itself: a layer inside it may be
                visit(children)

    visit(child_layers(network))
    return kept


def _rematerializes(layer) -> bool:
    """Whether Keras would wrap this layer's whole call in `remat`."""
    mode = remat_mode(layer)
    if mode is None or mode.mode == "activations":
        return False
    if mode.mode == "list_of_layers":
        return layer.name in mode.layer_names
    return True  # full; larger_than decides per call, by the output's size
