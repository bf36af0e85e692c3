"""`EncoderClassifier`: what `text_classification` and `pair_classification` share: a
classifier head on an encoder's pooled `[CLS]` output, for fine-tuning (a preset,
`model.init_from`) or training from scratch.

The head is keras-hub `BertTextClassifier`'s: dropout, then a dense layer to logits.
Subclasses say how a split's documents become packed encoder inputs (`pack_split`) and
how long they are by default (`default_length`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

import kplug
from kplug_transformers.encoder_objective import EncoderObjective, crossentropy
from kplug_transformers.packing import special_id


class EncoderClassifierConfig(kplug.Config):
    """The head's options; subclasses add `sequence_length` with their own default."""

    classifier_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout before the head")
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="share of each target spread over all classes"
    )


class EncoderClassifier(EncoderObjective):
    """Cross-entropy over the dataset's classes; monitors validation accuracy."""

    monitor = "val_accuracy"
    mode = "max"

    def adapt(self, data: kplug.Data, ctx: kplug.RunContext) -> kplug.Data:
        self.check_text_form(data)
        if not data.spec.num_classes:
            raise kplug.DataError(
                f"{self.name} needs labelled documents (a dataset with classes, e.g. "
                f"{self.labelled_example})."
            )
        self.length = self.config.sequence_length or self.default_length(data.train[0])
        return super().adapt(data, ctx)

    labelled_example = "vader_sentiment or text_files with a label column"

    def default_length(self, train_x: np.ndarray) -> int:
        raise NotImplementedError

    def pack_split(self, x: np.ndarray, cls: int, sep: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def sequence_length(self) -> int:
        return self.length

    def examples(self, split: Any, index: int, ctx: kplug.RunContext):
        cls = special_id(self.tokenizer, "[CLS]", self.name)
        sep = special_id(self.tokenizer, "[SEP]", self.name)
        return self.pack_split(split[0], cls, sep), np.asarray(split[1], np.int32)

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
