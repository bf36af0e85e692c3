"""`pair_classification`: sentence-pair inference (NLI, paraphrase, which-is-higher) with
a classifier on an encoder's pooled `[CLS]` output (see encoder_classifier.py).

Each pair becomes `[CLS] A [SEP] B [SEP]` with segment id 0 on `[CLS] A [SEP]` and 1 on
`B [SEP]`, cut to `sequence_length` (the longer side loses tokens first). The data must
be tokenized pairs (`text_form` `pairs`): `vader_pairs`, or `text_files` with
`pair_column`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, PositiveInt

import kplug
from kplug_transformers.encoder_classifier import EncoderClassifier, EncoderClassifierConfig
from kplug_transformers.packing import pack, tokenized_pairs


class PairClassificationConfig(EncoderClassifierConfig):
    sequence_length: PositiveInt | None = Field(
        None, description="tokens per example, [CLS] and both [SEP] included; a longer pair "
        "loses tokens from its longer side first; null: the longest training pair + 3",
    )  # fmt: skip


class PairClassification(EncoderClassifier):
    """Two texts per example: `[CLS] A [SEP] B [SEP]`, segments 0 and 1."""

    name = "pair_classification"
    labelled_example = "vader_pairs or text_files with pair_column and label_column"

    def check_text_form(self, data: kplug.Data) -> None:
        tokenized_pairs(data, self.name)

    def default_length(self, train_x: np.ndarray) -> int:
        return max(len(a) + len(b) for a, b in train_x) + 3

    def pack_split(self, x: np.ndarray, cls: int, sep: int) -> dict[str, np.ndarray]:
        sides = [[np.asarray(ids, np.int32) for ids in x[:, column]] for column in (0, 1)]
        return pack(sides[0], sides[1], self.length, cls, sep)
