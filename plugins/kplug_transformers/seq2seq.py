"""`seq2seq`: sequence-to-sequence training with teacher forcing.

From a tokenized corpus, each document is cut into segments; the source is a segment and
the target the segment that follows it in the same document (a next-passage task any
corpus supports). The decoder reads `[start] target` and is trained to output
`target [end]`, one token ahead at every position (teacher forcing); padding is ignored
by the loss. `[start]` is the tokenizer's `[CLS]` when it has one, else its end token.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, PositiveInt

import kplug
from kplug_transformers.encoder_objective import SPLITS
from kplug_transformers.packing import document_tokens, segments, tokenized_documents


class Seq2SeqConfig(kplug.Config):
    sequence_length: PositiveInt = Field(32, description="tokens of source and of target")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)


class Seq2Seq(kplug.Objective):
    """Cross-entropy of every target token given the source and the target so far."""

    monitor = "val_loss"
    mode = "min"

    def __init__(self, config: Seq2SeqConfig, ctx: kplug.RunContext):
        self.config = config

    def adapt(self, data: kplug.Data, ctx: kplug.RunContext) -> kplug.Data:
        tokenized_documents(data, "seq2seq")
        ids = data.spec.extras["tokenizer"].special_ids
        if "end" not in ids:
            raise kplug.DataError("seq2seq needs a tokenizer with an end-of-text token.")
        end, start = ids["end"], ids.get("[CLS]", ids["end"])
        splits, counts = {}, {}
        for name in SPLITS:
            split = getattr(data, name)
            splits[name] = None if split is None else self.pairs(split[0], start, end)
            counts[name] = 0 if splits[name] is None else len(splits[name][1])
        if not counts["train"]:
            raise kplug.DataError(
                "seq2seq: no document of the training text has two segments; lower "
                "objective.sequence_length or use longer documents."
            )
        spec = kplug.DataSpec(
            input_shape=(self.config.sequence_length,),
            vocabulary_size=data.spec.vocabulary_size,
            input_dtype="int32",
            extras={**data.spec.extras, "task": "seq2seq"},
        )
        return data.replace(**splits, spec=spec, report={**data.report, "seq2seq": counts})

    def pairs(self, documents: np.ndarray, start: int, end: int):
        length = self.config.sequence_length
        sources, targets = [], []
        for doc in segments(document_tokens(documents), length - 1):
            for first, second in zip(doc, doc[1:], strict=False):
                sources.append(first)
                targets.append(second)
        if not sources:
            return None
        n = len(sources)
        source = np.zeros((n, length), np.int32)
        decoder = np.zeros((n, length), np.int32)
        labels = np.zeros((n, length), np.int32)
        for row, (a, b) in enumerate(zip(sources, targets, strict=True)):
            source[row, : len(a)] = a
            decoder[row, : len(b) + 1] = [start, *b]
            labels[row, : len(b) + 1] = [*b, end]
        return {"encoder_token_ids": source, "decoder_token_ids": decoder}, labels

    def build(self, network: Any, ctx: kplug.RunContext) -> Any:
        if not isinstance(network.input, dict) or "decoder_token_ids" not in network.input:
            raise kplug.RecipeError(
                "objective seq2seq needs an encoder-decoder: use model.name: seq2seq_transformer."
            )
        return network

    def loss(self, ctx: kplug.RunContext):
        from kplug_transformers.sparse_crossentropy import SparseCrossentropy

        return SparseCrossentropy(
            from_logits=False, label_smoothing=self.config.label_smoothing, ignore_class=0
        )

    def metrics(self, ctx: kplug.RunContext):
        from kplug_transformers.masked_accuracy import MaskedAccuracy

        return [MaskedAccuracy(ignore_class=0)]
