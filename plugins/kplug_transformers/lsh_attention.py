"""`LSHAttention`: the Reformer's locality-sensitive-hashing attention (Kitaev et al.,
2020): shared queries and keys hashed into buckets, sorted, and attended chunk by chunk."""

from __future__ import annotations

import keras
from keras import ops

from kplug_transformers.self_attention import SelfAttention, masked_logits

# A position attends to itself only when nothing else is allowed (Reformer): with shared
# queries and keys its own score would otherwise dominate.
SELF_SCORE = -1e5


@keras.saving.register_keras_serializable(package="kplug_transformers")
class LSHAttention(SelfAttention):
    """Queries and keys share one projection (keys are the unit-length queries). In each
    of `hash_rounds` rounds, a random rotation hashes every key into one of
    `length / bucket_size` buckets (`argmax([xR, -xR])`); positions are sorted by bucket
    (then position) and cut into chunks of `bucket_size`; each chunk attends to itself and
    to the previous chunk. The rounds' outputs are combined with weights
    `softmax(logsumexp of each round's scores)`, which is exact attention over the union
    when the rounds see disjoint keys. Scores are `2 x bucket_size x length` per head and
    round: linear in the length. Causal masking compares original positions.

    The rotations are drawn from `seed`, the same at every call, so a reversible block can
    recompute them. One bucket (`bucket_size` = length) is full attention with shared
    queries and keys.

    Args:
        num_heads: attention heads.
        key_dim: width of each head.
        bucket_size: positions per chunk; the length must be a multiple of it.
        hash_rounds: independent hashings whose results are combined.
        seed: seed of the random rotations.
        causal: position i sees only positions j <= i.

    Example:
    ```python
    attention = LSHAttention(num_heads=4, key_dim=16, bucket_size=64, hash_rounds=2)
    y = attention(x)  # x: (batch, 4096, 64): 64 buckets
    ```
    """

    shared_query_key = True

    def __init__(self, num_heads: int, key_dim: int, bucket_size: int, hash_rounds: int = 2,
                 seed: int = 0, causal: bool = False, **kwargs):  # fmt: skip
        super().__init__(num_heads, key_dim, causal=causal, **kwargs)
        self.bucket_size = bucket_size
        self.hash_rounds = hash_rounds
        self.seed = seed

    def attend(self, query, key, value, padding_mask):
        length = query.shape[1]
        if length % self.bucket_size:
            raise ValueError(
                f"LSH attention cuts the sequence into chunks of bucket_size: a length of "
                f"{length} is not a multiple of bucket_size ({self.bucket_size})"
            )
        rounds, chunk = self.hash_rounds, self.bucket_size
        chunks = length // chunk
        batch = ops.shape(query)[0]
        sorted_shape = (batch, self.num_heads, rounds, length)
        # (batch, heads, rounds, length, key_dim): one copy per round.
        query, value = (ops.transpose(x, (0, 2, 1, 3))[:, :, None] for x in (query, value))
        key = query / ops.sqrt(ops.sum(ops.square(query), axis=-1, keepdims=True) + 1e-6)
        buckets = self._buckets(key, chunks, sorted_shape)
        order = ops.argsort(buckets * length + ops.arange(length), axis=-1)
        restore = ops.argsort(order, axis=-1)

        def sort(x):
            x = ops.broadcast_to(x, (*sorted_shape, self.key_dim))
            return ops.take_along_axis(x, order[..., None], axis=3)

        def in_chunks(x):  # (batch, heads, rounds, length, ...) -> (..., chunks, chunk, ...)
            return ops.reshape(x, (-1, self.num_heads, rounds, chunks, chunk, *x.shape[4:]))

        queries, keys, values = (in_chunks(sort(x)) for x in (query, key, value))
        query_position = in_chunks(order)
        key_mask = ops.broadcast_to(padding_mask[:, None, None, :], sorted_shape)
        key_mask = ops.take_along_axis(key_mask, order, axis=-1)
        keys, values, key_position, key_mask = (
            self._with_previous(x) for x in (keys, values, query_position, in_chunks(key_mask))
        )
        scores = ops.einsum("bnrcqh,bnrckh->bnrcqk", queries, keys)
        allowed = key_mask[..., None, :]
        if self.causal:
            allowed = allowed & (key_position[..., None, :] <= query_position[..., :, None])
        logits = masked_logits(scores, allowed, self.key_dim)
        itself = key_position[..., None, :] == query_position[..., :, None]
        logits = ops.where(itself & allowed, SELF_SCORE, logits)
        normaliser = ops.logsumexp(logits, axis=-1, keepdims=True)
        weights = ops.cast(ops.exp(logits - normaliser), values.dtype)
        heads = ops.einsum("bnrcqk,bnrckh->bnrcqh", weights, values)

        def unsort(x):  # (batch, heads, rounds, chunks, chunk, d) -> original order
            x = ops.reshape(x, (-1, self.num_heads, rounds, length, x.shape[-1]))
            return ops.take_along_axis(x, restore[..., None], axis=3)

        heads = unsort(heads)
        if rounds > 1:
            round_weights = ops.softmax(unsort(normaliser), axis=2)
            heads = ops.sum(heads * ops.cast(round_weights, heads.dtype), axis=2)
        else:
            heads = heads[:, :, 0]
        return ops.transpose(heads, (0, 2, 1, 3))

    def _buckets(self, key, buckets: int, shape):
        """`(batch, heads, 1, length, key_dim)` unit keys -> bucket ids of `shape`
        `(batch, heads, rounds, length)`, by angle after a random rotation per round."""
        if buckets == 1:
            return ops.zeros(shape, dtype="int32")
        directions = buckets // 2 if buckets % 2 == 0 else buckets
        rotations = keras.random.normal(
            (self.hash_rounds, self.key_dim, directions), seed=self.seed, dtype=key.dtype
        )
        rotated = ops.einsum("bnxth,rhd->bnrtd", key, rotations)
        if directions < buckets:
            rotated = ops.concatenate([rotated, -rotated], axis=-1)
        return ops.cast(ops.argmax(rotated, axis=-1), "int32")

    def _with_previous(self, x):
        """Along the chunk axis (3), each chunk followed by the previous one (cyclic, as in
        the Reformer), concatenated on axis 4; a single chunk stays alone."""
        if x.shape[3] == 1:
            return x
        previous = ops.concatenate([x[:, :, :, -1:], x[:, :, :, :-1]], axis=3)
        return ops.concatenate([x, previous], axis=4)

    def get_config(self):
        return {
            **super().get_config(),
            "bucket_size": self.bucket_size,
            "hash_rounds": self.hash_rounds,
            "seed": self.seed,
        }
