"""`classification`: cross-entropy on integer labels, with optional label smoothing."""

from __future__ import annotations

from pydantic import Field, PositiveInt

import kplug


class ClassificationConfig(kplug.Config):
    from_logits: bool = Field(False, description="the network outputs logits, not probabilities")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    top_k: list[PositiveInt] = Field([], description="also report top-k accuracy for these k")


class Classification(kplug.Objective):
    """Integer labels, sparse cross-entropy (categorical when smoothing labels)."""

    monitor = "val_accuracy"
    mode = "max"

    def __init__(self, config: ClassificationConfig, ctx: kplug.RunContext):
        self.config = config

    def adapt(self, data: kplug.Data, ctx: kplug.RunContext) -> kplug.Data:
        if not data.spec.num_classes:
            raise kplug.DataError(
                f"classification needs class labels, but dataset {ctx.recipe.data.name!r} "
                "gives none; point it at labelled data (text_files: set data.label_column) "
                "or choose an objective for unlabelled data (causal_lm)."
            )
        if not self.config.label_smoothing:
            return data
        classes = data.spec.num_classes
        return data.replace(
            **{s: _one_hot(getattr(data, s), classes) for s in ("train", "validation", "test")}
        )

    def loss(self, ctx: kplug.RunContext):
        import keras

        if self.config.label_smoothing:
            return keras.losses.CategoricalCrossentropy(
                from_logits=self.config.from_logits, label_smoothing=self.config.label_smoothing
            )
        return keras.losses.SparseCategoricalCrossentropy(from_logits=self.config.from_logits)

    def metrics(self, ctx: kplug.RunContext):
        import keras

        out: list = ["accuracy"]
        for k in self.config.top_k:
            metric = (
                keras.metrics.TopKCategoricalAccuracy
                if self.config.label_smoothing
                else keras.metrics.SparseTopKCategoricalAccuracy
            )
            out.append(metric(k=k, name=f"top{k}_accuracy"))
        return out


def _one_hot(split, classes: int):
    import numpy as np

    if split is None:
        return None
    if isinstance(split, tuple):
        x, y, *rest = split
        return (x, np.eye(classes, dtype=np.float32)[np.asarray(y)], *rest)
    import tensorflow as tf

    return split.map(lambda x, y: (x, tf.one_hot(tf.cast(y, tf.int32), classes)))
