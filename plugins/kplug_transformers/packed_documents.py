"""`PackedDocuments`: `text_classification`'s examples, `[CLS] tokens [SEP]` and the
class, built a batch at a time from labelled documents memory-mapped from the shards."""

from __future__ import annotations

import numpy as np
from kplug_text.token_shards import IndexedExamples, PaddedDocuments

from kplug_transformers.packing import document_tokens, pack


class PackedDocuments(IndexedExamples):
    """Example `i` is document `i` packed as in memory (`pack(document_tokens(rows))` of
    its padded row), with its label. Only the labels (4 bytes per document) are held.

    The input pipeline treats it like arrays (`IndexedExamples`): a seeded
    permutation of example indices per epoch, `gather` per batch, so a step checkpoint's
    (epoch, step) is the exact position.

    Args:
        documents: the split's padded documents, read from the shard.
        labels: the int32 class of each document.
        length: tokens per example, `[CLS]`/`[SEP]` included.
        cls, sep: the special ids.
        count: at most this many examples (`take`).
    """

    def __init__(self, documents: PaddedDocuments, labels: np.ndarray, length: int, cls: int,
                 sep: int, count: int | None = None):  # fmt: skip
        self.documents, self.labels, self.length = documents, labels, length
        self.cls, self.sep = cls, sep
        self.count = len(documents) if count is None else min(count, len(documents))
        spec = ((length,), "int32")
        self.output_signature = (
            {"token_ids": spec, "segment_ids": spec, "padding_mask": spec},
            ((), "int32"),
        )

    def take(self, n: int) -> PackedDocuments:
        return PackedDocuments(self.documents, self.labels, self.length, self.cls, self.sep,
                               min(n, self.count))  # fmt: skip

    def gather(self, indices: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        indices = np.asarray(indices, dtype=np.int64)
        rows = self.documents.gather(indices)
        x = pack(document_tokens(rows), None, self.length, self.cls, self.sep)
        return x, np.asarray(self.labels[indices], dtype=np.int32)
