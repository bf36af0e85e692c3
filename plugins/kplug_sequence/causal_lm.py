"""`causal_lm`: next-token prediction over windows of the token stream.

The data pipeline does the shifting: each split's documents are joined into one stream
(an end-of-text token after each document), cut into windows of `sequence_length + 1`
tokens, and each window becomes `x = window[:-1]`, `y = window[1:]`. Any architecture whose
network maps token ids `(batch, length)` to next-token distributions `(batch, length,
vocabulary)` trains with it: `rnn` here, transformer decoders later.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from kplug_text.corpus import require_single_texts
from kplug_text.token_shards import TokenDocuments, TokenWindows
from pydantic import Field, PositiveInt

import kplug

SPLITS = ("train", "validation", "test")


class CausalLMConfig(kplug.Config):
    sequence_length: PositiveInt = Field(100, description="tokens the model reads per example")
    stride: PositiveInt | None = Field(
        None, description="tokens between window starts; null: sequence_length (no overlap)"
    )
    separate_documents: bool = Field(
        True, description="put the tokenizer's end-of-text token after every document"
    )
    from_logits: bool = Field(False, description="the network outputs logits, not probabilities")
    document_mask: bool = Field(
        False, description="a token attends only to its own document within a packed window "
        "(the end-of-text token closes a document); needs model gpt2 with keras-hub blocks",
    )  # fmt: skip


class CausalLM(kplug.Objective):
    """Sparse cross-entropy of every next token; reports bits per token against the
    unigram entropy of the same tokens."""

    monitor = "val_loss"
    mode = "min"

    def __init__(self, config: CausalLMConfig, ctx: kplug.RunContext):
        self.config = config

    def adapt(self, data: kplug.Data, ctx: kplug.RunContext) -> kplug.Data:
        spec = data.spec
        require_single_texts(spec, "causal_lm", "{name: char}")
        tokenizer = spec.extras["tokenizer"]
        end = tokenizer.special_ids.get("end") if self.config.separate_documents else None
        if self.config.document_mask and end is None:
            raise kplug.RecipeError(
                "objective.document_mask needs documents closed by an end-of-text token: "
                "set separate_documents: true and use a tokenizer with one (char, byte, bpe)."
            )
        length = self.config.sequence_length
        stride = self.config.stride or length
        splits, counts = {}, {}
        for name in SPLITS:
            split = getattr(data, name)
            streamed = split is not None and streamed_windows(split[0], end, length, stride)
            if streamed:
                splits[name] = streamed if len(streamed) else None
                counts[name] = {"tokens": int(len(streamed.stream)), "windows": len(streamed)}
                continue
            stream = token_stream(split[0], end) if split is not None else np.zeros(0, np.int32)
            windows = sliding_windows(stream, self.config.sequence_length + 1, stride)
            splits[name] = (windows[:, :-1], windows[:, 1:]) if len(windows) else None
            counts[name] = {"tokens": int(len(stream)), "windows": int(len(windows))}
        if splits["train"] is None:
            raise kplug.DataError(
                f"the training text has {counts['train']['tokens']} tokens, fewer than one "
                f"window of objective.sequence_length + 1 = {self.config.sequence_length + 1}; "
                "lower sequence_length or use more text."
            )
        new_spec = kplug.DataSpec(
            input_shape=(self.config.sequence_length,),
            vocabulary_size=spec.vocabulary_size,
            input_dtype="int32",
            extras={**spec.extras, "task": "causal_lm"},
        )
        report = {**data.report, "causal_lm": counts}
        return data.replace(**splits, spec=new_spec, report=report)

    def build(self, network: Any, ctx: kplug.RunContext) -> Any:
        if self.config.document_mask and not getattr(network, "document_mask", False):
            raise kplug.RecipeError(
                f"objective.document_mask: model {network.name!r} cannot mask attention by "
                "document; use model.name: gpt2 (without kplug's own blocks: attention full "
                "or local, reversible false), or set document_mask: false."
            )
        return network

    def loss(self, ctx: kplug.RunContext):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=self.config.from_logits)

    def metrics(self, ctx: kplug.RunContext):
        return ["accuracy"]

    def report(self, model: Any, data: kplug.Data, ctx: kplug.RunContext) -> dict[str, Any]:
        """Cross-entropy and unigram entropy in bits per token on validation and test."""
        from kplug import SMOKE_STEPS

        batch_size = ctx.recipe.data.options.batch_size
        steps = SMOKE_STEPS if ctx.smoke else None
        out: dict[str, Any] = {}
        for name in ("validation", "test"):
            split = getattr(data, name)
            if split is None:
                continue
            loss = ctx.strategy.evaluate(model, split, batch_size=batch_size, steps=steps)["loss"]
            windows = None if steps is None else steps * batch_size
            if isinstance(split, TokenWindows):
                counts = split.target_counts(data.spec.vocabulary_size, windows)
            else:
                counts = np.bincount(np.asarray(split[1][:windows]).ravel())
            out[name] = bits_report(float(loss), counts)
            ctx.log.info(
                "%s: cross-entropy %.3f bits/token, unigram entropy %.3f bits/token "
                "(%.1f%% lower)", name, out[name]["cross_entropy_bits"],
                out[name]["unigram_entropy_bits"], 100 * out[name]["reduction_vs_unigram"],
            )  # fmt: skip
        return {"language_model": out} if out else {}


def token_stream(documents: np.ndarray, end: int | None) -> np.ndarray:
    """One int32 stream of the documents' tokens (padding dropped), `end` after each."""
    parts = []
    for ids in documents:
        ids = np.asarray(ids, dtype=np.int32)
        if documents.ndim == 2:  # padded rows: drop the padding id 0
            ids = ids[ids != 0]
        parts.append(ids)
        if end is not None:
            parts.append(np.array([end], dtype=np.int32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def sliding_windows(stream: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Windows of `length` tokens starting every `stride` tokens: a 2-D int32 copy."""
    if len(stream) < length:
        return np.zeros((0, length), dtype=np.int32)
    return np.lib.stride_tricks.sliding_window_view(stream, length)[::stride].copy()


def streamed_windows(documents, end: int | None, length: int, stride: int) -> TokenWindows | None:
    """Windows read from the memory-mapped shard when it already holds this stream (the
    documents, `end` after each); None: build the stream in memory."""
    if not isinstance(documents, TokenDocuments) or documents.end_id != end:
        return None
    return TokenWindows(documents.stream(), length, stride)


def unigram_entropy_bits(tokens: np.ndarray) -> float:
    """Entropy (bits per token) of the tokens' own frequency distribution: the best any
    model that ignores context can do on exactly these tokens."""
    return entropy_of_counts(np.bincount(np.asarray(tokens).ravel()))


def entropy_of_counts(counts: np.ndarray) -> float:
    """Entropy in bits of the distribution with these counts."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def bits_report(loss_nats: float, counts: np.ndarray) -> dict[str, float]:
    """Cross-entropy against the unigram entropy of the targets (`counts` of each id)."""
    cross_entropy = loss_nats / math.log(2)
    unigram = entropy_of_counts(counts)
    return {
        "cross_entropy_bits": round(cross_entropy, 4),
        "unigram_entropy_bits": round(unigram, 4),
        "reduction_vs_unigram": round(1 - cross_entropy / unigram, 4),
        "perplexity": round(2**cross_entropy, 3),
        "tokens": int(counts.sum()),
    }
