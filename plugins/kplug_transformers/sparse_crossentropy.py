"""`SparseCrossentropy`: cross-entropy of integer targets with label smoothing and an
ignored target id, averaged over the targets that count."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kplug_transformers")
class SparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of class ids against logits (or probabilities), with label smoothing.

    Keras 3.15's `SparseCategoricalCrossentropy` has no `label_smoothing`; one-hot targets
    over a 30,000-token vocabulary would be wasteful. With smoothing `e`, the target
    distribution is `(1 - e)` on the true class plus `e` spread evenly over all classes.

    Args:
        from_logits: `y_pred` holds logits (else probabilities).
        label_smoothing: `e` in [0, 1).
        ignore_class: a target id that contributes nothing (padding of masked-LM
            targets), or None.

    Example:
    ```python
    loss = SparseCrossentropy(from_logits=True, label_smoothing=0.1, ignore_class=0)
    ```
    """

    def __init__(self, from_logits=True, label_smoothing=0.0, ignore_class=None, **kwargs):
        super().__init__(**kwargs)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.ignore_class = ignore_class

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        if self.from_logits:
            log_p = ops.log_softmax(y_pred, axis=-1)
        else:
            log_p = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(log_p.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        safe = ops.maximum(y_true, 0)
        nll = -ops.squeeze(ops.take_along_axis(log_p, safe[..., None], axis=-1), axis=-1)
        if self.label_smoothing:
            uniform = -ops.mean(log_p, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        if self.ignore_class is None:
            return nll
        # Already reduced: the mean over the targets that count, whatever their number.
        valid = ops.cast(ops.not_equal(y_true, self.ignore_class), "float32")
        return ops.sum(nll * valid) / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "ignore_class": self.ignore_class,
        }
