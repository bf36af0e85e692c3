"""`text_classification`: a classifier head on an encoder's pooled `[CLS]` output, for
fine-tuning (a preset, `model.init_from`) or training from scratch.

The head is keras-hub `BertTextClassifier`'s: dropout, then a dense layer to logits.
Each document becomes `[CLS] tokens [SEP]`, cut to `sequence_length`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, PositiveInt

import kplug
from kplug_transformers.encoder_objective import EncoderObjective, crossentropy
from kplug_transformers.packing import document_tokens, pack, special_id


class TextClassificationConfig(kplug.Config):
    sequence_length: PositiveInt | None = Field(
        None, description="tokens per example, [CLS]/[SEP] included; null: the dataset's "
        "padded length + 2",
    )  # fmt: skip
    classifier_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout before the head")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)


class TextClassification(EncoderObjective):
    """Cross-entropy over the dataset's classes; monitors validation accuracy."""

    name = "text_classification"
    monitor = "val_accuracy"
    mode = "max"

    def adapt(self, data: kplug.Data, ctx: kplug.RunContext) -> kplug.Data:
        if not data.spec.num_classes:
            raise kplug.DataError(
                "text_classification needs labelled documents (a dataset with classes, e.g. "
                "vader_sentiment or text_files with a label column)."
            )
        width = data.train[0].shape[1] if getattr(data.train[0], "ndim", 1) == 2 else None
        self.length = self.config.sequence_length or (width + 2 if width else 128)
        return super().adapt(data, ctx)

    @property
    def sequence_length(self) -> int:
        return self.length

    def examples(self, split: Any, index: int, ctx: kplug.RunContext):
        cls = special_id(self.tokenizer, "[CLS]", self.name)
        sep = special_id(self.tokenizer, "[SEP]", self.name)
        x = pack(document_tokens(split[0]), None, self.length, cls, sep)
        return x, np.asarray(split[1], np.int32)

    def heads(self, network: Any, inputs: dict, outputs: dict, ctx: kplug.RunContext):
        import keras

        x = keras.layers.Dropout(self.config.classifier_dropout, name="classifier_dropout")(
            outputs["pooled_output"]
        )
        return keras.layers.Dense(ctx.spec.num_classes, name="logits", dtype="float32")(x)

    def loss(self, ctx: kplug.RunContext):
        return crossentropy(self.config.label_smoothing)

    def metrics(self, ctx: kplug.RunContext):
        return ["accuracy"]
