"""`bert`: keras-hub's `BertBackbone`, new or from a preset, with full, flash or local
attention.

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
    return network


def local_bert(network: Any, window: int) -> Any:
    """The layers of a `BertBackbone` wired again with a banded self-attention mask."""
    import keras

    from kplug_transformers.local_attention_mask import LocalAttentionMask

    # === Inputs ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")

    # === Functional model: BertBackbone's graph, plus the band ===
    tokens = network.token_embedding(token_ids)
    positions = network.position_embedding(tokens)
    segments = network.segment_embedding(segment_ids)
    x = network.embeddings_add((tokens, positions, segments))
    x = network.embeddings_layer_norm(x)
    x = network.embeddings_dropout(x)
    band = LocalAttentionMask(window, name="local_attention_mask")(padding_mask)
    for layer in network.transformer_layers:
        x = layer(x, padding_mask=padding_mask, attention_mask=band)
    pooled = network.pooled_dense(x[:, 0, :])
    model = keras.Model(
        {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
        {"sequence_output": x, "pooled_output": pooled},
        name="bert_backbone",
    )
    model.max_sequence_length = network.max_sequence_length
    return model
