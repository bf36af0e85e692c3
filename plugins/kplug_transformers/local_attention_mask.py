"""`LocalAttentionMask`: the banded attention mask of local (Longformer-style) attention."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kplug_transformers")
class LocalAttentionMask(keras.layers.Layer):
    """A `(batch, length, length)` mask letting position i attend to position j only
    when `|i - j| <= window`; padded positions (mask 0) are seen by nobody.

    Args:
        window: positions on each side a token attends to.

    Call arguments:
        padding_mask: `(batch, length)`, 1 for tokens and 0 for padding.

    Example:
    ```python
    mask = LocalAttentionMask(window=16)(padding_mask)
    x = encoder_layer(x, attention_mask=mask)
    ```
    """

    def __init__(self, window: int, **kwargs):
        super().__init__(**kwargs)
        self.window = window

    def call(self, padding_mask):
        length = ops.shape(padding_mask)[1]
        positions = ops.arange(length)
        distance = ops.abs(positions[:, None] - positions[None, :])
        band = ops.cast(distance <= self.window, "int32")
        keys = ops.cast(padding_mask, "int32")[:, None, :]
        return band[None, :, :] * keys

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[1])

    def get_config(self):
        return {**super().get_config(), "window": self.window}
