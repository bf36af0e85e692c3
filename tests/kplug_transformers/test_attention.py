"""Memory-efficient attention layers (sliding window, axial, LSH) against full attention
computed densely in NumPy: equal where they must be, causal without leaks, bad shapes
refused, and models with them saved and loaded."""

from __future__ import annotations

import numpy as np
import pytest
from kplug_transformers.axial_attention import AxialAttention
from kplug_transformers.lsh_attention import SELF_SCORE, LSHAttention
from kplug_transformers.self_attention import SelfAttention
from kplug_transformers.sliding_window_attention import SlidingWindowAttention

pytestmark = pytest.mark.xdist_group("transformers")

HEADS, KEY_DIM, LENGTH = 2, 4, 12


def heads(seed=0, length=LENGTH, pad=3):
    """Random queries, keys and values `(2, length, heads, key_dim)` and a padding mask
    whose second sequence ends in `pad` padding positions."""
    rng = np.random.default_rng(seed)
    q, k, v = (rng.normal(size=(2, length, HEADS, KEY_DIM)).astype("float32") for _ in range(3))
    mask = np.ones((2, length), bool)
    mask[1, length - pad :] = False
    return q, k, v, mask


def dense(q, k, v, allowed, self_score=None):
    """Reference attention: `allowed` `(batch, queries, keys)` boolean."""
    scores = np.einsum("bqnh,bknh->bnqk", q, k) / np.sqrt(q.shape[-1])
    if self_score is not None:
        diagonal = np.eye(q.shape[1], dtype=bool)[None, None]
        scores = np.where(diagonal, self_score, scores)
    scores = np.where(allowed[:, None], scores, -1e9)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("bnqk,bknh->bqnh", weights, v)


def allowed_pairs(mask, causal, band=None, global_tokens=0):
    i, j = np.indices((mask.shape[1],) * 2)
    allowed = np.ones_like(i, bool) if band is None else np.abs(i - j) <= band
    allowed |= (i < global_tokens) | (j < global_tokens)
    if causal:
        allowed &= j <= i
    return allowed[None] & mask[:, None, :]


def attend(layer, q, k, v, mask):
    return np.asarray(layer.attend(q, k, v, mask))


def real_rows(x):  # padding queries' outputs are not compared
    return x[:, : LENGTH - 3]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window", [LENGTH, 40])
def test_a_window_covering_the_sequence_is_full_attention(causal, window):
    q, k, v, mask = heads()
    full = dense(q, k, v, allowed_pairs(mask, causal))
    layer = SlidingWindowAttention(HEADS, KEY_DIM, window=window, causal=causal)
    np.testing.assert_allclose(real_rows(attend(layer, q, k, v, mask)), real_rows(full), atol=1e-5)
    assert np.allclose(attend(SelfAttention(HEADS, KEY_DIM, causal=causal), q, k, v, mask), full,
                       atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("window", "global_tokens"), [(2, 0), (3, 0), (5, 0), (2, 2)])
def test_sliding_window_is_the_banded_mask_computed_blockwise(causal, window, global_tokens):
    # Windows that do and do not divide the length; with global tokens.
    q, k, v, mask = heads(seed=1)
    expected = dense(q, k, v, allowed_pairs(mask, causal, window, global_tokens))
    layer = SlidingWindowAttention(HEADS, KEY_DIM, window=window, global_tokens=global_tokens,
                                   causal=causal)  # fmt: skip
    got = attend(layer, q, k, v, mask)
    np.testing.assert_allclose(real_rows(got), real_rows(expected), atol=1e-5)
    full = dense(q, k, v, allowed_pairs(mask, causal))
    assert np.abs(real_rows(got) - real_rows(full)).max() > 1e-2  # the band matters


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("rows", [1, LENGTH])
def test_axial_with_one_row_or_one_column_is_full_attention(causal, rows):
    q, k, v, mask = heads()
    full = dense(q, k, v, allowed_pairs(mask, causal))
    got = attend(AxialAttention(HEADS, KEY_DIM, rows=rows, causal=causal), q, k, v, mask)
    np.testing.assert_allclose(real_rows(got), real_rows(full), atol=1e-5)


def test_axial_is_row_attention_then_column_attention():
    q, k, v, mask = heads(seed=2, pad=0)
    rows, columns = 3, 4
    row, column = np.divmod(np.arange(LENGTH), columns)
    same_row = np.broadcast_to(row[:, None] == row[None, :], (2, LENGTH, LENGTH))
    same_column = np.broadcast_to(column[:, None] == column[None, :], (2, LENGTH, LENGTH))
    by_row = dense(q, k, v, same_row)
    expected = dense(q, k, by_row, same_column)
    got = attend(AxialAttention(HEADS, KEY_DIM, rows=rows), q, k, v, mask)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("hash_rounds", [1, 3])
def test_lsh_with_one_bucket_is_full_shared_query_key_attention(causal, hash_rounds):
    q, _, v, mask = heads()
    keys = q / np.sqrt((q**2).sum(-1, keepdims=True) + 1e-6)
    # A position sees itself only at SELF_SCORE (Reformer).
    expected = dense(q, keys, v, allowed_pairs(mask, causal), self_score=SELF_SCORE)
    layer = LSHAttention(HEADS, KEY_DIM, bucket_size=LENGTH, hash_rounds=hash_rounds,
                         causal=causal)  # fmt: skip
    got = attend(layer, q, keys, v, mask)
    np.testing.assert_allclose(real_rows(got), real_rows(expected), atol=1e-5)


def test_lsh_rounds_are_combined_by_their_log_sum_exp():
    # Four buckets of 16 positions: each round sees part of the keys; the rounds'
    # outputs are averaged with weights exp(lse), a convex combination of one-round
    # results, which an exact reference of the chosen pairs reproduces.
    q, _, v, mask = heads(seed=3, length=64, pad=0)
    keys = q / np.sqrt((q**2).sum(-1, keepdims=True) + 1e-6)
    one = attend(LSHAttention(HEADS, KEY_DIM, bucket_size=16, hash_rounds=1), q, keys, v, mask)
    full = dense(q, keys, v, allowed_pairs(mask, False), self_score=SELF_SCORE)
    assert np.abs(one - full).max() > 1e-3  # hashing restricts what each query sees
    four = attend(LSHAttention(HEADS, KEY_DIM, bucket_size=16, hash_rounds=4), q, keys, v, mask)
    assert np.isfinite(four).all()
    assert np.abs(four - full).mean() < np.abs(one - full).mean()  # more rounds, closer


@pytest.mark.parametrize(
    "layer",
    [
        SlidingWindowAttention(HEADS, KEY_DIM, window=3, causal=True),
        SlidingWindowAttention(HEADS, KEY_DIM, window=3, global_tokens=2, causal=True),
        AxialAttention(HEADS, KEY_DIM, rows=3, causal=True),
        LSHAttention(HEADS, KEY_DIM, bucket_size=4, hash_rounds=2, causal=True),
    ],
    ids=["sliding_window", "sliding_window_global", "axial", "lsh"],
)
def test_causal_variants_never_see_the_future(layer):
    # LSH: later queries/keys move chunk boundaries (so which earlier keys share a chunk,
    # as in the Reformer); what must never reach an earlier position is a later value.
    q, k, v, mask = heads(seed=4, pad=0)
    before = attend(layer, q, k, v, mask)
    for changed in (5, 9):
        q2, k2, v2 = (x.copy() for x in (q, k, v))
        for x in (v2,) if isinstance(layer, LSHAttention) else (q2, k2, v2):
            x[:, changed:] += 1.0
        after = attend(layer, q2, k2, v2, mask)
        np.testing.assert_allclose(after[:, :changed], before[:, :changed], atol=1e-5)
        assert np.abs(after[:, changed:] - before[:, changed:]).max() > 1e-3


def test_lengths_that_do_not_fit_are_refused():
    q, k, v, mask = heads()
    with pytest.raises(ValueError, match="not a multiple of rows"):
        AxialAttention(HEADS, KEY_DIM, rows=5).attend(q, k, v, mask)
    with pytest.raises(ValueError, match="not a multiple of bucket_size"):
        LSHAttention(HEADS, KEY_DIM, bucket_size=5).attend(q, q, v, mask)


def test_models_with_each_attention_save_and_load(tmp_path):
    import keras
    from kplug_transformers.transformer_block import TransformerBlock

    options = {"sliding_window": {"window": 3, "global_tokens": 1}, "axial": {"rows": 3},
               "lsh": {"bucket_size": 4, "hash_rounds": 2}}  # fmt: skip
    x = np.random.default_rng(5).normal(size=(2, LENGTH, 8)).astype("float32")
    for name, option in options.items():
        inputs = keras.Input((LENGTH, 8))
        block = TransformerBlock(2, 16, attention=name, attention_options=option, causal=True)
        model = keras.Model(inputs, block(inputs))
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)
        assert type(loaded.layers[1].self_attention).__name__ == type(block.self_attention).__name__
