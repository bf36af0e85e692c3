"""The Keras 3 <-> tf_keras bridge: outputs agree after a round trip, layer type by layer
type; layers it cannot convert are listed with the steps that do apply."""

from __future__ import annotations

import os

import numpy as np
import pytest
from kplug_compress import bridge
from kplug_compress.tfmot import import_tfmot

TOLERANCE = 1e-5


def _layer_cases():
    from keras import layers as L  # noqa: N812

    image, sequence, vector = (6, 6, 2), (5, 3), (4,)
    return {
        "Dense": (lambda: L.Dense(3, activation="relu", kernel_regularizer="l2"), vector),
        "Conv1D": (lambda: L.Conv1D(4, 3, padding="same"), sequence),
        "Conv2D": (lambda: L.Conv2D(4, 3, strides=2, padding="same"), image),
        "DepthwiseConv2D": (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), image),
        "SeparableConv2D": (lambda: L.SeparableConv2D(4, 3), image),
        "MaxPooling1D": (lambda: L.MaxPooling1D(2), sequence),
        "MaxPooling2D": (lambda: L.MaxPooling2D(2), image),
        "AveragePooling1D": (lambda: L.AveragePooling1D(2), sequence),
        "AveragePooling2D": (lambda: L.AveragePooling2D(2), image),
        "GlobalMaxPooling1D": (L.GlobalMaxPooling1D, sequence),
        "GlobalMaxPooling2D": (L.GlobalMaxPooling2D, image),
        "GlobalAveragePooling1D": (L.GlobalAveragePooling1D, sequence),
        "GlobalAveragePooling2D": (L.GlobalAveragePooling2D, image),
        "Flatten": (L.Flatten, image),
        "Reshape": (lambda: L.Reshape((3, 5)), sequence),
        "Dropout": (lambda: L.Dropout(0.5), vector),
        "SpatialDropout1D": (lambda: L.SpatialDropout1D(0.5), sequence),
        "SpatialDropout2D": (lambda: L.SpatialDropout2D(0.5), image),
        "ZeroPadding1D": (lambda: L.ZeroPadding1D(1), sequence),
        "ZeroPadding2D": (lambda: L.ZeroPadding2D(1), image),
        "BatchNormalization": (L.BatchNormalization, image),
        "LayerNormalization": (L.LayerNormalization, sequence),
        "Embedding": (lambda: L.Embedding(10, 4), "tokens"),
        "LSTM": (lambda: L.LSTM(4, return_sequences=True), sequence),
        "GRU": (lambda: L.GRU(4), sequence),
        "SimpleRNN": (lambda: L.SimpleRNN(4), sequence),
        "Activation": (lambda: L.Activation("softmax"), vector),
        "ReLU": (lambda: L.ReLU(max_value=1.5), vector),
        "LeakyReLU": (lambda: L.LeakyReLU(negative_slope=0.2), vector),
        "ELU": (L.ELU, vector),
        "Softmax": (L.Softmax, vector),
    }


LAYERS = sorted(_layer_cases())
MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


@pytest.fixture(scope="module")
def rng():
    import_tfmot()  # the bridge runs next to TF-MOT in real use
    return np.random.default_rng(0)


def _randomize(model, rng):
    """Random weights (positive where a variance must be) so that every weight matters."""
    values = []
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "variance" in weight.path:
            values.append(rng.uniform(0.5, 2.0, shape).astype("float32"))
        else:
            values.append(rng.normal(size=shape).astype("float32"))
    model.set_weights(values)


def _round_trip_outputs(model, x):
    legacy = bridge.to_tf_keras(model)
    back = bridge.to_keras(legacy)
    return [np.asarray(m(x, training=False)) for m in (model, legacy, back)], legacy, back


@pytest.mark.parametrize("name", LAYERS)
def test_round_trip_per_layer_type(name, rng):
    import keras

    make, shape = _layer_cases()[name]
    if shape == "tokens":
        inputs = keras.Input((5,), dtype="int32")
        x = rng.integers(0, 10, size=(3, 5)).astype("int32")
    else:
        inputs = keras.Input(shape)
        x = rng.normal(size=(3, *shape)).astype("float32")
    model = keras.Model(inputs, make()(inputs), name=f"one_{name.lower()}")
    _randomize(model, rng)
    (original, legacy_out, back_out), legacy, back = _round_trip_outputs(model, x)
    assert type(legacy).__module__.startswith("tf_keras")
    assert [type(layer).__name__ for layer in back.layers] == [
        type(layer).__name__ for layer in model.layers
    ]
    assert np.abs(original - legacy_out).max() <= TOLERANCE
    assert np.abs(original - back_out).max() <= TOLERANCE
    assert [layer.name for layer in back.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", MERGES)
def test_round_trip_merges_branches_and_shared_layers(name, rng):
    import keras
    from keras import layers as L  # noqa: N812

    left, right = keras.Input((3,), name="left"), keras.Input((3,), name="right")
    shared = L.Dense(3, name="shared")
    merged = getattr(L, name)(name="merge")([shared(left), shared(right)])
    model = keras.Model([left, right], L.Dense(2, name="head")(merged))
    _randomize(model, rng)
    x = [rng.normal(size=(2, 3)).astype("float32") for _ in range(2)]
    (original, legacy_out, back_out), legacy, _ = _round_trip_outputs(model, x)
    assert np.abs(original - legacy_out).max() <= TOLERANCE
    assert np.abs(original - back_out).max() <= TOLERANCE
    assert len(legacy.get_layer("shared")._inbound_nodes) == 2  # still one shared layer


def test_round_trip_sequential_with_a_nested_model(rng):
    import keras
    from keras import layers as L  # noqa: N812

    block = keras.Sequential([keras.Input((4,)), L.Dense(4, activation="tanh")], name="block")
    model = keras.Sequential([keras.Input((4,)), block, L.Dense(2)], name="outer")
    _randomize(model, rng)
    x = rng.normal(size=(2, 4)).astype("float32")
    (original, legacy_out, back_out), _, _ = _round_trip_outputs(model, x)
    assert np.abs(original - back_out).max() <= TOLERANCE
    assert np.abs(original - legacy_out).max() <= TOLERANCE


class Scale:
    """A custom layer the bridge does not know (built lazily: Keras is imported inside)."""

    @staticmethod
    def layer():
        import keras

        class ScaleLayer(keras.layers.Layer):
            def call(self, x):
                return x * 2.0

        return ScaleLayer(name="custom_scale")


def test_unbridgeable_layers_are_listed_with_the_native_steps():
    import keras

    inputs = keras.Input((4,))
    dense = keras.layers.Dense(3, name="with_lora")
    outputs = Scale.layer()(dense(inputs))
    dense.enable_lora(2)  # a Keras 3 option tf_keras has no equivalent for
    model = keras.Model(inputs, outputs)
    with pytest.raises(bridge.UnbridgeableModelError) as info:
        bridge.to_tf_keras(model, step="prune")
    message = str(info.value)
    assert "custom_scale (ScaleLayer)" in message
    assert "with_lora (Dense): option lora_rank=2" in message
    assert "quantize, distill and low_rank" in message
    assert message.startswith("prune runs on TF-MOT")


def test_tfmot_import_leaves_keras_3_and_the_environment_alone():
    import keras

    tfmot = import_tfmot()
    assert "TF_USE_LEGACY_KERAS" not in os.environ
    assert keras.__version__.startswith("3.")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert model(np.ones((1, 2), "float32")).shape == (1, 1)
    assert tfmot.sparsity.keras.prune_low_magnitude is not None
