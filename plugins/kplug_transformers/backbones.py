"""What the `bert` and `gpt2` architectures share: building or loading a keras-hub
backbone, checking it fits the data, and the attention options."""

from __future__ import annotations

from typing import Any

import kplug
from kplug_transformers.config import TransformerConfig
from kplug_transformers.presets import load_backbone, preset_vocabulary, resolve_preset


def backbone(cls: Any, config: TransformerConfig, ctx: kplug.RunContext) -> Any:
    """A keras-hub backbone of class `cls`: from `config.preset`, or new of the config's
    size for the dataset's vocabulary. Checks vocabulary and sequence length."""
    spec = ctx.spec
    if spec.input_dtype != "int32" or not spec.vocabulary_size:
        raise kplug.DataError(
            f"{cls.__name__} reads token ids: give the dataset a tokenizer, e.g. "
            "data.tokenizer: {name: wordpiece, vocab_size: 4000}."
        )
    use_attention(config, ctx)
    if config.preset:
        preset = resolve_preset(config.preset)
        network = load_backbone(cls, preset)
        check_vocabulary(network, preset, spec)
        limit_key = f"the preset's max_sequence_length ({config.preset})"
    else:
        network = cls(
            vocabulary_size=spec.vocabulary_size,
            # kplug's own blocks replace keras-hub's: only the embeddings are used.
            num_layers=0 if config.builds_own_blocks else config.layers,
            num_heads=config.heads,
            hidden_dim=config.hidden,
            intermediate_dim=config.intermediate,
            dropout=config.dropout,
            max_sequence_length=config.max_length,
        )
        limit_key = "model.max_length"
    length = spec.input_shape[0] if spec.input_shape else None
    config.check_length(length)
    if length is not None and length > network.max_sequence_length:
        raise kplug.RecipeError(
            f"sequences of {length} tokens are longer than {limit_key}: "
            f"{network.max_sequence_length}. Lower the objective's (or dataset's) "
            "sequence_length, or raise model.max_length (not possible with a preset)."
        )
    return network


def use_attention(config: TransformerConfig, ctx: kplug.RunContext) -> None:
    """Switch Keras flash attention on for `attention: flash` where the backend has it."""
    import keras

    if config.attention != "flash":
        return
    if keras.backend.backend() == "tensorflow":
        raise kplug.RecipeError(
            "model.attention: flash is not available on the tensorflow backend (Keras 3 "
            "implements flash attention for jax and torch on GPUs). Use attention: full, or "
            "run with backend: jax on a GPU."
        )
    keras.config.enable_flash_attention()


def check_vocabulary(network: Any, preset: str, spec: kplug.DataSpec) -> None:
    """The tokenizer must be the preset's own: same size and, when the preset ships its
    vocabulary file, the same tokens in the same order."""
    tokenizer = spec.extras.get("tokenizer")
    expected = preset_vocabulary(preset)
    tokens = getattr(tokenizer, "vocabulary", None)
    same_size = spec.vocabulary_size == network.vocabulary_size
    if same_size and (expected is None or tokens is None or list(tokens) == expected):
        return
    raise kplug.DataError(
        f"the tokenizer ({spec.vocabulary_size} tokens) is not the vocabulary of preset "
        f"{preset} ({network.vocabulary_size} tokens); a pretrained model only understands "
        "its own token ids. Use data.tokenizer: {name: pretrained_wordpiece, source: "
        "<the same preset>}."
    )
