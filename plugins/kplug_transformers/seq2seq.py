"""`seq2seq`: sequence-to-sequence training with teacher forcing.

From a tokenized corpus, each document is cut into segments; the source is a segment and
the target the segment that follows it in the same document (a next-passage task any
corpus supports). The decoder reads `[start] target` and is trained to output
`target [end]`, one token ahead at every position (teacher forcing); padding is ignored
by the loss. `[start]` is the tokenizer's `[CLS]` when it has one, else its end token.

Over prepared (memory-mapped) documents the pairs are streamed: `SegmentPairs` builds a
batch of them from the token shard when the input pipeline asks for it, the same arrays
as `Seq2Seq.pairs` gives in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from kplug_text.token_shards import IndexedExamples, TokenDocuments
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
            counts[name] = kplug.count_examples(splits[name])
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
        """The split's examples: `SegmentPairs` over prepared documents, else arrays."""
        if isinstance(documents, TokenDocuments):
            streamed = SegmentPairs(documents, self.config.sequence_length, start, end)
            return streamed if len(streamed) else None
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


class SegmentPairs(IndexedExamples):
    """The seq2seq examples of memory-mapped documents, built a batch at a time: example
    `i` is the `i`-th pair (segment, next segment of the same document) in document order,
    as `Seq2Seq.pairs` lists them. Only one int64 per document stays in memory.

    The input pipeline treats it like arrays (see `TokenWindows`): a seeded permutation of
    example indices per epoch, `gather` per batch, so a step checkpoint's (epoch, step) is
    the exact position.

    Args:
        documents: the split's prepared documents.
        length: `sequence_length` (segments hold `length - 1` tokens).
        start: the decoder's start id; end: the label after the last target token.
        count: at most this many examples (`take`).
    """

    def __init__(self, documents: TokenDocuments, length: int, start: int, end: int,
                 count: int | None = None):  # fmt: skip
        self.documents, self.length, self.start, self.end = documents, length, start, end
        self.segment = length - 1
        sizes = np.diff(documents.offsets) - (documents.end_id is not None)
        pairs = np.maximum(-(-sizes // self.segment) - 1, 0)
        self.first_pair = np.concatenate([[0], np.cumsum(pairs)]).astype(np.int64)
        total = int(self.first_pair[-1])
        self.count = total if count is None else min(count, total)
        spec = ((length,), "int32")
        self.output_signature = ({"encoder_token_ids": spec, "decoder_token_ids": spec}, spec)

    def take(self, n: int) -> SegmentPairs:
        return SegmentPairs(self.documents, self.length, self.start, self.end, min(n, self.count))

    def gather(self, indices: np.ndarray):
        indices = np.asarray(indices, dtype=np.int64)
        documents = np.searchsorted(self.first_pair, indices, side="right") - 1
        n, size = len(indices), self.segment
        source, decoder, labels = (np.zeros((n, self.length), np.int32) for _ in range(3))
        tokens, offsets = self.documents.tokens, self.documents.offsets
        has_end = self.documents.end_id is not None
        for row, (index, d) in enumerate(zip(indices, documents, strict=True)):
            first, stop = offsets[d] + (index - self.first_pair[d]) * size, offsets[d + 1] - has_end
            a = tokens[first : min(first + size, stop)]
            b = tokens[first + size : min(first + 2 * size, stop)]
            source[row, : len(a)] = a
            decoder[row, 0], decoder[row, 1 : len(b) + 1] = self.start, b
            labels[row, : len(b)], labels[row, len(b)] = b, self.end
        return {"encoder_token_ids": source, "decoder_token_ids": decoder}, labels
