"""Every use of a private Keras API in kplug, each with why no public one serves.

Keras may rename or remove any of these in a minor release: the tests that exercise them
(tests/test_phases.py, tests/test_run.py init_from, tests/kplug_transformers/
test_training.py remat) are the ones to run after upgrading Keras.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any


def child_layers(layer: Any) -> list[Any]:
    """The layers directly inside `layer` (its attributes, lists and dicts of layers)."""
    # Keras 3 has no public accessor for a plain Layer's sublayers (`Model.layers` lists
    # only a functional model's graph nodes, not layers a subclassed layer holds), and its
    # own tracker `_flatten_layers` is what `Layer.weights` walks.
    return list(layer._flatten_layers(include_self=False, recursive=False))


def all_layers(layer: Any, *, include_self: bool = False) -> Iterator[Any]:
    """Every layer below `layer` at any depth, nested models included."""
    # As `child_layers`: the tracker Keras itself uses to collect weights.
    return layer._flatten_layers(include_self=include_self, recursive=True)


def made_up_name_base(layer: Any) -> str:
    """The name Keras gives a layer of this class when none is given (`dense`), before
    its counter suffix (`dense_3`)."""
    # Keras makes up names with this private helper; no public one says what it would be.
    from keras.src.utils.naming import to_snake_case

    return to_snake_case(type(layer).__name__)


def remat_mode(layer: Any) -> Any:
    """The `keras.RematScope` mode a layer was built under, or None."""
    # Keras keeps the scope it captured at construction in `_remat_mode` and offers no
    # public getter; `outermost_only` needs it to find the rematerialized layers.
    return layer._remat_mode


def clear_remat_mode(layer: Any) -> None:
    """Make Keras call `layer` without `remat` from now on."""
    # No public way to undo a RematScope after construction; setting the private
    # attribute to None is what a layer built outside any scope has.
    layer._remat_mode = None


def bind_remat_keyword_arguments() -> None:
    """Make Keras' TensorFlow `remat` accept keyword arguments (idempotent).

    Keras 3.15's TensorFlow `remat` is `tf.recompute_grad`, which refuses keyword
    arguments in graph mode, and Keras calls rematerialized layers with `training=...`:
    every `fit` of a model built under `keras.RematScope` fails (keras-team/keras#21207,
    open). The keyword arguments are bound before the call reaches Keras' own `remat`, so
    the recomputation is still TensorFlow's. Remove once the upstream issue is fixed.
    """
    import keras

    # The patch point: Keras' layers call `remat` through this private module attribute.
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
