"""`MaskedAccuracy`: accuracy over the targets that are not the ignored id."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kplug_transformers")
class MaskedAccuracy(keras.metrics.Metric):
    """Share of targets whose arg-max prediction is right, ignoring `ignore_class`
    (the padding of masked-LM targets).

    Args:
        ignore_class: the target id that does not count.
    """

    def __init__(self, ignore_class: int = 0, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_class = ignore_class
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        valid = ops.cast(ops.not_equal(y_true, self.ignore_class), "float32")
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
        self.correct.assign_add(ops.sum(hit * valid))
        self.total.assign_add(ops.sum(valid))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class}
