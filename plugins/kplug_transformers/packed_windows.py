"""`PackedWindows`: `mlm`'s unmasked examples, `[CLS] window [SEP]`, built a batch at a
time from a token stream (memory-mapped from the shards, or an array in memory)."""

from __future__ import annotations

import numpy as np
from kplug_text.token_shards import IndexedExamples

from kplug_transformers.packing import pack


class PackedWindows(IndexedExamples):
    """Example `i` is `[CLS] stream[i * window : (i + 1) * window] [SEP]`: the windows of
    `sliding_windows(stream, window, window)`, packed. Nothing but the stream is held.

    The input pipeline treats it like arrays (`IndexedExamples`): a seeded
    permutation of example indices per epoch, `gather` per batch.

    Args:
        stream: int token ids, the documents joined with `[SEP]`.
        window: tokens per window (`sequence_length - 2`).
        cls, sep: the special ids.
        count: at most this many examples (`take`).
    """

    def __init__(self, stream: np.ndarray, window: int, cls: int, sep: int,
                 count: int | None = None):  # fmt: skip
        self.stream, self.window, self.cls, self.sep = stream, window, cls, sep
        fits = len(stream) // window
        self.count = fits if count is None else min(count, fits)
        spec = ((window + 2,), "int32")
        self.output_signature = (
            {"token_ids": spec, "segment_ids": spec, "padding_mask": spec},
            {},
        )

    def take(self, n: int) -> PackedWindows:
        return PackedWindows(self.stream, self.window, self.cls, self.sep, min(n, self.count))

    def gather(self, indices: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        starts = np.asarray(indices, dtype=np.int64) * self.window
        windows = self.stream[starts[:, None] + np.arange(self.window)].astype(np.int32)
        return pack(list(windows), None, self.window + 2, self.cls, self.sep), {}
