"""`text_classification`: a classifier on an encoder's pooled `[CLS]` output (see
encoder_classifier.py); each document becomes `[CLS] tokens [SEP]`, cut to
`sequence_length`. Labelled text prepared into shards (`data.stream: true`) is streamed a
batch at a time (`PackedDocuments`), the same examples as in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from kplug_text.token_shards import PaddedDocuments
from pydantic import Field, PositiveInt

import kplug
from kplug_transformers.encoder_classifier import EncoderClassifier, EncoderClassifierConfig
from kplug_transformers.packed_documents import PackedDocuments
from kplug_transformers.packing import document_tokens, pack, special_id


class TextClassificationConfig(EncoderClassifierConfig):
    sequence_length: PositiveInt | None = Field(
        None, description="tokens per example, [CLS]/[SEP] included; null: the dataset's "
        "padded length + 2",
    )  # fmt: skip


class TextClassification(EncoderClassifier):
    """One text per example: `[CLS] tokens [SEP]`."""

    name = "text_classification"

    def default_length(self, train_x: np.ndarray) -> int:
        return train_x.shape[1] + 2 if getattr(train_x, "ndim", 1) == 2 else 128

    def pack_split(self, x: np.ndarray, cls: int, sep: int) -> dict[str, np.ndarray]:
        return pack(document_tokens(x), None, self.length, cls, sep)

    def examples(self, split: Any, index: int, ctx: kplug.RunContext):
        if not isinstance(split[0], PaddedDocuments):
            return super().examples(split, index, ctx)
        cls = special_id(self.tokenizer, "[CLS]", self.name)
        sep = special_id(self.tokenizer, "[SEP]", self.name)
        return PackedDocuments(split[0], split[1], self.length, cls, sep)
