"""`SlidingWindowAttention`: Longformer's sliding-window attention with optional global
tokens, computed block by block so that memory and time grow as length x window."""

from __future__ import annotations

import keras
from keras import ops

from kplug_transformers.self_attention import SelfAttention, masked_logits


@keras.saving.register_keras_serializable(package="kplug_transformers")
class SlidingWindowAttention(SelfAttention):
    """Each position attends to the positions at most `window` away (only earlier ones
    when causal) and to the first `global_tokens` positions, which in turn attend to all.

    The sequence is cut into blocks of `window` queries; a block's keys are its own block
    and its neighbours (the previous one only, when causal), so the scores are
    `(batch, length / window, heads, window, 3 * window)`: linear in the length. The
    result is exactly that of full attention under the banded mask.

    Args:
        num_heads: attention heads.
        key_dim: width of each head.
        window: positions seen on each side.
        global_tokens: the first positions of the sequence that see, and are seen by,
            every position (Longformer's global attention, e.g. `[CLS]`).
        causal: position i sees only positions j <= i.

    Example:
    ```python
    attention = SlidingWindowAttention(num_heads=4, key_dim=16, window=128)
    y = attention(x, padding_mask=mask)  # x: (batch, 4096, 64)
    ```
    """

    def __init__(self, num_heads: int, key_dim: int, window: int, global_tokens: int = 0,
                 causal: bool = False, **kwargs):  # fmt: skip
        super().__init__(num_heads, key_dim, causal=causal, **kwargs)
        self.window = window
        self.global_tokens = global_tokens

    def attend(self, query, key, value, padding_mask):
        length = query.shape[1]
        if length is None:  # traced for any length (generation): blocks of `window`
            length, block = ops.shape(query)[1], self.window
        else:
            block = min(self.window, length)
        blocks = (length + block - 1) // block
        pad = blocks * block - length

        def in_blocks(x):  # (batch, length, ...) -> (batch, blocks, block, ...)
            x = ops.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (len(x.shape) - 2))
            return ops.reshape(x, (-1, blocks, block, *x.shape[2:]))

        queries = in_blocks(query)
        keys, values, key_mask = (
            self._neighbours(in_blocks(x)) for x in (key, value, padding_mask)
        )
        query_position = ops.arange(blocks)[:, None] * block + ops.arange(block)[None, :]
        key_position = self._neighbours(query_position[None])[0]
        distance = query_position[:, :, None] - key_position[:, None, :]
        allowed = ops.abs(distance) <= self.window
        if self.causal:
            allowed = allowed & (distance >= 0)
        if self.global_tokens:  # they take part below, as global keys, not twice
            allowed = allowed & (key_position >= self.global_tokens)[:, None, :]
        allowed = allowed[None, :, None] & key_mask[:, :, None, None, :]
        scores = ops.einsum("bcqnh,bcknh->bcnqk", queries, keys)
        logits = [masked_logits(scores, allowed, self.key_dim)]
        if self.global_tokens:
            logits.append(self._global_key_logits(queries, key, padding_mask, query_position))
        weights = ops.cast(ops.softmax(ops.concatenate(logits, axis=-1), axis=-1), value.dtype)
        band = keys.shape[2]
        heads = ops.einsum("bcnqk,bcknh->bcqnh", weights[..., :band], values)
        if self.global_tokens:
            global_values = value[:, : self.global_tokens]
            heads += ops.einsum("bcnqg,bgnh->bcqnh", weights[..., band:], global_values)
        heads = ops.reshape(heads, (-1, blocks * block, *heads.shape[3:]))[:, :length]
        if self.global_tokens:
            heads = ops.concatenate([self._global_queries(query, key, value, padding_mask),
                                     heads[:, self.global_tokens :]], axis=1)  # fmt: skip
        return heads

    def _neighbours(self, x):
        """`(batch, blocks, block, ...)` -> each block with the previous one (and, unless
        causal, the next one) before and after it along axis 2; zeros past the ends."""
        empty = ops.zeros_like(x[:, :1])
        previous = ops.concatenate([empty, x[:, :-1]], axis=1)
        if self.causal:
            return ops.concatenate([previous, x], axis=2)
        following = ops.concatenate([x[:, 1:], empty], axis=1)
        return ops.concatenate([previous, x, following], axis=2)

    def _global_key_logits(self, queries, key, padding_mask, query_position):
        global_keys = key[:, : self.global_tokens]
        scores = ops.einsum("bcqnh,bgnh->bcnqg", queries, global_keys)
        allowed = padding_mask[:, None, None, None, : self.global_tokens]
        if self.causal:
            positions = ops.arange(self.global_tokens)
            allowed = (
                allowed & (positions[None, None, :] <= query_position[:, :, None])[None, :, None]
            )
        return masked_logits(scores, allowed, self.key_dim)

    def _global_queries(self, query, key, value, padding_mask):
        """Full attention of the global positions to every position."""
        scores = ops.einsum("bgnh,bknh->bngk", query[:, : self.global_tokens], key)
        allowed = padding_mask[:, None, None, :]
        if self.causal:
            positions = ops.arange(ops.shape(query)[1])
            allowed = allowed & (positions[None, :] <= positions[: self.global_tokens, None])
        weights = ops.softmax(masked_logits(scores, allowed, self.key_dim), axis=-1)
        return ops.einsum("bngk,bknh->bgnh", ops.cast(weights, value.dtype), value)

    def get_config(self):
        return {**super().get_config(), "window": self.window, "global_tokens": self.global_tokens}
