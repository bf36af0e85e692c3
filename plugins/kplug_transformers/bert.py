"""`bert`: keras-hub's `BertBackbone`, new or from a preset, with full, flash or local
attention; or its embeddings with kplug's own blocks (sliding window, axial or LSH
attention, reversible blocks).

The network takes `{token_ids, segment_ids, padding_mask}` and returns
`{sequence_output, pooled_output}`; objectives put their heads on it (`mlm`, `nsp`,
`text_classification`). With `attention: local` the backbone's own layers are wired again
with a banded attention mask, so weights, names and presets are the same.
"""

from __future__ import annotations

from typing import Any

import kplug
from kplug_transformers.backbones import backbone
from kplug_transformers.config import TransformerConfig


class BertConfig(TransformerConfig):
    """A BERT encoder (keras-hub `BertBackbone`)."""


def build_bert(config: BertConfig, ctx: kplug.RunContext) -> Any:
    from keras_hub.models import BertBackbone

    network = backbone(BertBackbone, config, ctx)
    if config.attention == "local":
        return local_bert(network, config.window)
    if config.builds_own_blocks:
        return own_blocks_bert(network, config)
    return network


def local_bert(network: Any, window: int) -> Any:
    """The layers of a `BertBackbone` wired again with a banded self-attention mask."""
    from kplug_transformers.local_attention_mask import LocalAttentionMask

    def banded(x, padding_mask):
        band = LocalAttentionMask(window, name="local_attention_mask")(padding_mask)
        for layer in network.transformer_layers:
            x = layer(x, padding_mask=padding_mask, attention_mask=band)
        return x

    return bert_graph(network, banded)


def own_blocks_bert(network: Any, config: BertConfig) -> Any:
    """The embeddings of a `BertBackbone` followed by kplug's own blocks."""
    import keras

    from kplug_transformers.block_stack import transformer_stack

    def own_blocks(x, padding_mask):
        x = transformer_stack(config, x, padding_mask, causal=False)
        if config.reversible:  # the mean of the two streams, normalized as BERT's blocks
            x = keras.layers.LayerNormalization(epsilon=1e-12, name="reversible_layer_norm")(x)
        return x

    return bert_graph(network, own_blocks)


def bert_graph(network: Any, blocks: Any) -> Any:
    """`BertBackbone`'s graph with `blocks(x, padding_mask)` between its embeddings and
    its pooled output."""
    import keras

    # === Inputs ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")

    # === Functional model: BertBackbone's graph with the given blocks ===
    tokens = network.token_embedding(token_ids)
    positions = network.position_embedding(tokens)
    segments = network.segment_embedding(segment_ids)
    x = network.embeddings_add((tokens, positions, segments))
    x = network.embeddings_layer_norm(x)
    x = network.embeddings_dropout(x)
    x = blocks(x, padding_mask)
    pooled = network.pooled_dense(x[:, 0, :])
    model = keras.Model(
        {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
        {"sequence_output": x, "pooled_output": pooled},
        name="bert_backbone",
    )
    model.max_sequence_length = network.max_sequence_length
    return model
