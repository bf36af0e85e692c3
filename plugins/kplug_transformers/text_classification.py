"""`text_classification`: a classifier on an encoder's pooled `[CLS]` output (see
encoder_classifier.py); each document becomes `[CLS] tokens [SEP]`, cut to
`sequence_length`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, PositiveInt

from kplug_transformers.encoder_classifier import EncoderClassifier, EncoderClassifierConfig
from kplug_transformers.packing import document_tokens, pack


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
