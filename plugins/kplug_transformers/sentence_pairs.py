"""`SentencePairs`: next-sentence-prediction examples drawn per example index, so they can
be built a batch at a time from memory-mapped documents (streamed) or all at once."""

from __future__ import annotations

import numpy as np
from kplug_text.token_shards import IndexedExamples, TokenDocuments

from kplug_transformers.packing import pack


class SentencePairs(IndexedExamples):
    """Example `i` is the `i`-th segment that has a successor in its document (documents
    cut into segments of `segment` tokens, in order), paired with that successor (label
    1) or, with probability 1/2, with a segment of another document (label 0), both drawn
    from a generator seeded by `(*seed, i)`: a pair does not depend on which batch asks
    for it, so streamed batches, and a resumed run's, are those built in memory. Only two
    int64 per document stay in memory.

    Args:
        documents: the split's documents (`joined` makes them of arrays in memory).
        segment: tokens per segment.
        length: tokens per packed example `[CLS] A [SEP] B [SEP]`.
        cls, sep: the special ids.
        seed: the generator's seed prefix, e.g. (run seed, split number).
        count: at most this many examples (`take`).
    """

    def __init__(self, documents: TokenDocuments, segment: int, length: int, cls: int,
                 sep: int, seed: tuple[int, ...], count: int | None = None):  # fmt: skip
        self.documents, self.segment, self.length = documents, segment, length
        self.cls, self.sep, self.seed = cls, sep, tuple(seed)
        self.sizes = np.diff(documents.offsets) - (documents.end_id is not None)
        self.segments = -(-self.sizes // segment)
        self.first_segment = np.concatenate([[0], np.cumsum(self.segments)]).astype(np.int64)
        pairs = np.maximum(self.segments - 1, 0)
        self.first_pair = np.concatenate([[0], np.cumsum(pairs)]).astype(np.int64)
        # A false partner needs another document with text.
        total = int(self.first_pair[-1]) if np.count_nonzero(self.segments) >= 2 else 0
        self.count = total if count is None else min(count, total)
        spec = ((length,), "int32")
        self.output_signature = (
            {"token_ids": spec, "segment_ids": spec, "padding_mask": spec},
            {"nsp": ((), "int32")},
        )

    def take(self, n: int) -> SentencePairs:
        return SentencePairs(self.documents, self.segment, self.length, self.cls, self.sep,
                             self.seed, min(n, self.count))  # fmt: skip

    def gather(self, indices: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        first, second, labels = [], [], []
        for index in np.asarray(indices, dtype=np.int64):
            d = int(np.searchsorted(self.first_pair, index, side="right")) - 1
            k = int(index - self.first_pair[d])
            first.append(self.segment_of(d, k))
            rng = np.random.default_rng([*self.seed, int(index)])
            if rng.random() < 0.5:
                second.append(self.segment_of(d, k + 1))
                labels.append(1)
                continue
            other = int(rng.integers(self.first_segment[-1] - self.segments[d]))
            if other >= self.first_segment[d]:  # skip this document's own segments
                other += int(self.segments[d])
            e = int(np.searchsorted(self.first_segment, other, side="right")) - 1
            second.append(self.segment_of(e, other - int(self.first_segment[e])))
            labels.append(0)
        x = pack(first, second, self.length, self.cls, self.sep)
        return x, {"nsp": np.asarray(labels, np.int32)}

    def segment_of(self, document: int, k: int) -> np.ndarray:
        """Segment `k` of `document`'s tokens."""
        start = self.documents.offsets[document] + k * self.segment
        stop = min(start + self.segment, self.documents.offsets[document] + self.sizes[document])
        return np.asarray(self.documents.tokens[start:stop], dtype=np.int32)


def joined(documents: list[np.ndarray]) -> TokenDocuments:
    """Token arrays held in memory as `TokenDocuments` (one array and the offsets)."""
    tokens = np.concatenate([*documents, np.zeros(0, np.int32)]).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in documents])]).astype(np.int64)
    return TokenDocuments(tokens, offsets, None)
