"""`TransformerBlock`: a transformer block whose self-attention is any of kplug's
attention layers (full, sliding window, axial, LSH)."""

from __future__ import annotations

from typing import Any

import keras

from kplug_transformers.axial_attention import AxialAttention
from kplug_transformers.lsh_attention import LSHAttention
from kplug_transformers.self_attention import SelfAttention
from kplug_transformers.sliding_window_attention import SlidingWindowAttention

ATTENTION_LAYERS = {
    "full": SelfAttention,
    "sliding_window": SlidingWindowAttention,
    "axial": AxialAttention,
    "lsh": LSHAttention,
}


def attention_layer(kind: str, options: dict, *, num_heads: int, key_dim: int, causal: bool,
                    **kwargs: Any) -> SelfAttention:  # fmt: skip
    """The self-attention layer of `kind` (a key of `ATTENTION_LAYERS`) with its options."""
    return ATTENTION_LAYERS[kind](num_heads, key_dim, causal=causal, **options, **kwargs)


@keras.saving.register_keras_serializable(package="kplug_transformers")
class TransformerBlock(keras.layers.Layer):
    """Self-attention and a feed-forward network, each with a residual connection, layer
    normalization and dropout; the sublayer names are keras-hub `TransformerEncoder`'s.

    Args:
        num_heads: attention heads; the hidden width must be a multiple of it.
        intermediate_dim: width of the feed-forward layer.
        attention: `full`, `sliding_window`, `axial` or `lsh`.
        attention_options: the attention layer's own arguments, e.g. `{"window": 128}`.
        causal: position i sees only positions j <= i (decoders).
        normalize_first: layer normalization before each sublayer (GPT-2) rather than
            after the residual sum (BERT).
        dropout: dropout on each sublayer's output.
        layer_norm_epsilon: epsilon of the layer normalizations.

    Call arguments:
        x: `(batch, length, hidden)`.
        padding_mask: optional `(batch, length)`, 1 for tokens, 0 for padding.

    Example:
    ```python
    block = TransformerBlock(4, 256, attention="lsh", attention_options={"bucket_size": 64})
    y = block(x, padding_mask=mask)
    ```
    """

    def __init__(self, num_heads: int, intermediate_dim: int, attention: str = "full",
                 attention_options: dict | None = None, causal: bool = False,
                 normalize_first: bool = False, dropout: float = 0.0,
                 layer_norm_epsilon: float = 1e-5, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.attention = attention
        self.attention_options = dict(attention_options or {})
        self.causal = causal
        self.normalize_first = normalize_first
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        hidden = input_shape[-1]
        intermediate_shape = (*input_shape[:-1], self.intermediate_dim)

        def built(layer, shape=input_shape):
            layer.build(shape)
            return layer

        def norm(name):
            return keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name=name)

        # === Layers ===
        self.self_attention = built(attention_layer(
            self.attention, self.attention_options, num_heads=self.num_heads,
            key_dim=hidden // self.num_heads, causal=self.causal, name="self_attention_layer",
        ))  # fmt: skip
        self.self_attention_layer_norm = built(norm("self_attention_layer_norm"))
        self.self_attention_dropout = keras.layers.Dropout(self.dropout)
        self.feedforward_layer_norm = built(norm("feedforward_layer_norm"))
        self.feedforward_intermediate_dense = built(keras.layers.Dense(
            self.intermediate_dim, activation="gelu", name="feedforward_intermediate_dense"
        ))  # fmt: skip
        self.feedforward_output_dense = built(
            keras.layers.Dense(hidden, name="feedforward_output_dense"), intermediate_shape
        )
        self.feedforward_dropout = keras.layers.Dropout(self.dropout)

    def call(self, x, padding_mask=None, training=None):
        def attend(y):
            return self.self_attention(y, padding_mask=padding_mask)

        def feed_forward(y):
            return self.feedforward_output_dense(self.feedforward_intermediate_dense(y))

        x = self._residual(x, attend, self.self_attention_layer_norm,
                           self.self_attention_dropout, training)  # fmt: skip
        return self._residual(x, feed_forward, self.feedforward_layer_norm,
                              self.feedforward_dropout, training)  # fmt: skip

    def _residual(self, x, sublayer, norm, dropout, training):
        if self.normalize_first:
            return x + dropout(sublayer(norm(x)), training=training)
        return norm(x + dropout(sublayer(x), training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "attention": self.attention,
            "attention_options": self.attention_options,
            "causal": self.causal,
            "normalize_first": self.normalize_first,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
