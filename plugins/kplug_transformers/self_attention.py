"""`SelfAttention`: multi-head self-attention over all positions, the base of the
memory-efficient attention layers (sliding window, axial, LSH), which only replace
`attend`."""

from __future__ import annotations

import math

import keras
from keras import ops

# Scores of masked pairs; softmax is computed in float32, where this is exact zero weight.
MASKED = -1e9


@keras.saving.register_keras_serializable(package="kplug_transformers")
class SelfAttention(keras.layers.Layer):
    """Multi-head self-attention: query, key, value and output projections (the shapes of
    `keras.layers.MultiHeadAttention`) around `attend`, which here is full attention: its
    scores are `(batch, heads, length, length)`.

    Args:
        num_heads: attention heads.
        key_dim: width of each head.
        causal: position i sees only positions j <= i.

    Call arguments:
        x: `(batch, length, hidden)`.
        padding_mask: optional `(batch, length)`, 1 for tokens and 0 for padding, which no
            position attends to.

    Example:
    ```python
    attention = SelfAttention(num_heads=4, key_dim=16, causal=True)
    y = attention(x)  # (batch, length, 64)
    ```
    """

    # LSH attention shares one projection between queries and keys (Reformer).
    shared_query_key = False

    def __init__(self, num_heads: int, key_dim: int, causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.causal = causal

    def build(self, input_shape):
        hidden = input_shape[-1]
        heads = (None, self.num_heads, self.key_dim)

        def projection(name):
            layer = keras.layers.EinsumDense(
                "btd,dnh->btnh",
                output_shape=heads,
                bias_axes="nh",
                name=name,
                dtype=self.dtype_policy,
            )
            layer.build(input_shape)
            return layer

        self.query = projection("query")
        if not self.shared_query_key:
            self.key = projection("key")
        self.value = projection("value")
        self.attention_output = keras.layers.EinsumDense(
            "btnh,nhd->btd",
            output_shape=(None, hidden),
            bias_axes="d",
            name="attention_output",
            dtype=self.dtype_policy,
        )
        self.attention_output.build((*input_shape[:-1], self.num_heads, self.key_dim))

    def call(self, x, padding_mask=None):
        query = self.query(x)
        key = query if self.shared_query_key else self.key(x)
        if padding_mask is None:
            padding_mask = ops.ones(ops.shape(x)[:2], dtype="int32")
        heads = self.attend(query, key, self.value(x), ops.cast(padding_mask, "bool"))
        return self.attention_output(heads)

    def attend(self, query, key, value, padding_mask):
        """`(batch, length, heads, key_dim)` queries, keys and values and a boolean
        `(batch, length)` padding mask -> `(batch, length, heads, key_dim)`."""
        scores = ops.einsum("bqnh,bknh->bnqk", query, key)
        allowed = padding_mask[:, None, None, :]
        if self.causal:
            positions = ops.arange(ops.shape(query)[1])
            allowed = allowed & (positions[None, :] <= positions[:, None])[None, None]
        weights = ops.softmax(masked_logits(scores, allowed, self.key_dim), axis=-1)
        return ops.einsum("bnqk,bknh->bqnh", ops.cast(weights, value.dtype), value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "causal": self.causal,
        }


def masked_logits(scores, allowed, key_dim: int):
    """`scores / sqrt(key_dim)` in float32 (softmax is taken there), `MASKED` where
    `allowed` is false."""
    scores = ops.cast(scores, "float32") / math.sqrt(key_dim)
    return ops.where(allowed, scores, MASKED)
