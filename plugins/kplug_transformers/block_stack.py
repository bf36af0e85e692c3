"""The blocks of a `bert` or `gpt2` with sliding-window, axial or LSH attention or
reversible blocks: kplug's own layers on the keras-hub backbone's embeddings."""

from __future__ import annotations

from typing import Any

from kplug_transformers.config import TransformerConfig


def transformer_stack(config: TransformerConfig, x: Any, padding_mask: Any, *, causal: bool) -> Any:
    """`config.layers` blocks applied to `x`: `TransformerBlock`s, normalized after the
    residual sum (BERT) or, when `causal`, before each sublayer (GPT-2); or one
    `ReversibleStack`."""
    from kplug_transformers.reversible_stack import ReversibleStack
    from kplug_transformers.transformer_block import TransformerBlock

    attention = {"attention": config.attention, "attention_options": config.attention_options()}
    if config.reversible:
        stack = ReversibleStack(
            config.layers, config.heads, config.intermediate, causal=causal,
            name="reversible_stack", **attention,
        )  # fmt: skip
        return stack(x, padding_mask=padding_mask)
    for index in range(config.layers):
        block = TransformerBlock(
            config.heads, config.intermediate, causal=causal, normalize_first=causal,
            dropout=config.dropout, name=f"transformer_layer_{index}", **attention,
        )  # fmt: skip
        x = block(x, padding_mask=padding_mask)
    return x
