"""`rnn`: embedding, recurrent layers (LSTM, GRU or SimpleRNN) and a softmax head.

The seed's text generator is the default: Embedding(vocabulary, 256) - LSTM(128) -
Dense(vocabulary, softmax). The head follows the data: one distribution over the
vocabulary per position when the data has no classes (language modelling, `causal_lm`),
one distribution over the classes per sequence when it has (text classification, where
`bidirectional` is allowed and padding id 0 is masked).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

import kplug

LAYERS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
# Weight matrices per recurrent cell type (gates).
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}


class RNNConfig(kplug.Config):
    cell: Literal["lstm", "gru", "simple_rnn"] = Field("lstm", description="recurrent cell")
    layers: PositiveInt = Field(1, description="stacked recurrent layers")
    units: PositiveInt = Field(128, description="units of each recurrent layer")
    embedding_dim: PositiveInt = Field(256, description="size of the token embedding")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each recurrent layer")
    bidirectional: bool = Field(
        False, description="read both directions (classification only: a language model "
        "must not see the tokens it predicts)",
    )  # fmt: skip
    output_activation: Literal["softmax", "linear"] = Field(
        "softmax", description="linear: logits (set the objective's from_logits: true)"
    )


def head(spec: kplug.DataSpec) -> str:
    """`classes` when the data has classes, else `tokens` (next-token distributions)."""
    return "classes" if spec.num_classes else "tokens"


def build_rnn(config: RNNConfig, ctx: kplug.RunContext):
    import keras
    from keras import layers

    spec = ctx.spec
    if spec.input_dtype != "int32" or not spec.vocabulary_size:
        raise kplug.DataError(
            "rnn reads token ids: give the dataset a tokenizer (data.tokenizer: {name: char})."
        )
    kind = head(spec)
    if kind == "tokens" and config.bidirectional:
        raise kplug.RecipeError(
            "model.bidirectional: a language model cannot read backwards (it would see the "
            "tokens it predicts); set bidirectional: false, or use labelled data."
        )
    outputs_size = spec.num_classes if kind == "classes" else spec.vocabulary_size
    recurrent = getattr(layers, LAYERS[config.cell])

    # === Layers and functional model ===
    inputs = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = layers.Embedding(
        spec.vocabulary_size, config.embedding_dim, mask_zero=kind == "classes", name="embedding"
    )(inputs)
    for index in range(1, config.layers + 1):
        sequences = kind == "tokens" or index < config.layers
        layer = recurrent(config.units, return_sequences=sequences, name=f"{config.cell}{index}")
        if config.bidirectional:
            layer = layers.Bidirectional(layer, name=f"bidirectional{index}")
        x = layer(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"dropout{index}")(x)
    x = layers.Dense(outputs_size, name="logits")(x)
    # Float32 output keeps the loss stable under mixed precision.
    outputs = layers.Activation(config.output_activation, dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="rnn")


def estimate_rnn(config: RNNConfig, facts: dict) -> dict:
    """The exact parameter count from the vocabulary (and class) sizes, without building."""
    vocabulary = facts.get("vocabulary_size")
    if not vocabulary:
        return {}
    outputs = facts.get("num_classes") or vocabulary
    directions = 2 if config.bidirectional else 1
    params = vocabulary * config.embedding_dim
    features = config.embedding_dim
    for _ in range(config.layers):
        u = config.units
        biases = 2 * u if config.cell == "gru" else u  # Keras GRU: reset_after, two biases
        params += directions * GATES[config.cell] * (u * (features + u) + biases)
        features = directions * u
    params += features * outputs + outputs
    return {"parameters": params}
