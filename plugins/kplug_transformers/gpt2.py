"""`gpt2`: keras-hub's `GPT2Backbone` with a tied output layer, a causal language model.

The network maps token ids `(batch, length)` to next-token probabilities `(batch,
length, vocabulary)`, which the `causal_lm` objective of the sequence plugin trains and
`kplug generate` samples from. The output layer is the token embedding transposed
(`ReversibleEmbedding(reverse=True)`), as in keras-hub's `GPT2CausalLM`. With
`attention: local` the decoder blocks also get a banded mask on top of the causal one;
with sliding window, axial or LSH attention or reversible blocks, kplug's own causal
blocks replace keras-hub's. `causal_lm`'s `document_mask: true` adds a per-document mask
(`DocumentAttentionMask`) to keras-hub's blocks: no token of a packed window attends
across an end-of-text token.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

import kplug
from kplug_transformers.backbones import backbone
from kplug_transformers.config import TransformerConfig


class GPT2Config(TransformerConfig):
    """A GPT-2 decoder (keras-hub `GPT2Backbone`) with tied input and output embeddings."""

    output: Literal["probabilities", "logits"] = Field(
        "probabilities",
        description="probabilities: a float32 softmax; logits: the raw scores in the compute "
        "dtype, as keras-hub's GPT2CausalLM (set objective.from_logits: true); saves the "
        "softmax pass over the vocabulary, the faster choice for large vocabularies",
    )


def build_gpt2(config: GPT2Config, ctx: kplug.RunContext) -> Any:
    import keras
    from keras import ops
    from keras_hub.models import GPT2Backbone

    from kplug_transformers.block_stack import transformer_stack
    from kplug_transformers.document_attention_mask import DocumentAttentionMask
    from kplug_transformers.local_attention_mask import LocalAttentionMask

    if ctx.spec.num_classes:
        raise kplug.RecipeError(
            "gpt2 is a language model (objective causal_lm); for labelled text use "
            "model.name: bert with objective text_classification."
        )
    objective = getattr(ctx.recipe, "objective", None)  # none when built outside a run
    from_logits = getattr(getattr(objective, "config", None), "from_logits", None)
    document_mask = getattr(getattr(objective, "config", None), "document_mask", False)
    if document_mask and config.builds_own_blocks:
        raise kplug.RecipeError(
            "objective.document_mask works with keras-hub's decoder blocks: use attention "
            "full or local and reversible: false on gpt2, or set document_mask: false."
        )
    if from_logits is not None and from_logits != (config.output == "logits"):
        raise kplug.RecipeError(
            f"model.output: {config.output} needs objective.from_logits: "
            f"{str(config.output == 'logits').lower()}; set the two together."
        )
    network = backbone(GPT2Backbone, config, ctx)

    # === Functional model: GPT2Backbone's graph (and the band), then the tied output ===
    # One flat graph, not the backbone nested: the token embedding is used twice (input
    # and output), and a layer shared between a nested model and its parent does not
    # survive a .keras round trip.
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = ops.ones_like(token_ids)
    tokens = network.token_embedding(token_ids)
    positions = network.position_embedding(tokens)
    x = network.embeddings_add((tokens, positions))
    x = network.embeddings_dropout(x)
    band = None
    if config.attention == "local":
        band = LocalAttentionMask(config.window, name="local_attention_mask")(padding_mask)
    if document_mask:  # combined with the band, and by keras-hub with the causal mask
        documents = DocumentAttentionMask(ctx.spec.extras["tokenizer"].special_ids["end"],
                                          name="document_attention_mask")(token_ids)  # fmt: skip
        band = documents if band is None else band * documents
    if config.builds_own_blocks:
        x = transformer_stack(config, x, None, causal=True)
    for layer in network.transformer_layers:  # none with kplug's own blocks
        x = layer(x, decoder_padding_mask=padding_mask, decoder_attention_mask=band)
    x = network.layer_norm(x)
    logits = network.token_embedding(x, reverse=True)
    if config.output == "logits":
        model = keras.Model(token_ids, logits, name="gpt2")
        model.max_sequence_length = network.max_sequence_length
        model.document_mask = document_mask
        return model
    # Float32 probabilities keep the loss stable under mixed precision.
    probabilities = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(
        logits
    )
    model = keras.Model(token_ids, probabilities, name="gpt2")
    model.max_sequence_length = network.max_sequence_length
    model.document_mask = document_mask
    return model
