"""`DocumentAttentionMask`: attention within each document of a packed token window."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kplug_transformers")
class DocumentAttentionMask(keras.layers.Layer):
    """A `(batch, length, length)` mask letting position i attend to position j only when
    both lie in the same document: a document runs up to and including its end-of-text
    token, so a window packed from several documents (`causal_lm`) keeps them apart. The
    decoder combines it with its causal mask.

    Args:
        end_id: the end-of-text token that closes each document.

    Call arguments:
        token_ids: `(batch, length)` int token ids.

    Example:
    ```python
    mask = DocumentAttentionMask(end_id=2)(token_ids)
    x = decoder_layer(x, decoder_attention_mask=mask)
    ```
    """

    def __init__(self, end_id: int, **kwargs):
        super().__init__(**kwargs)
        self.end_id = end_id

    def call(self, token_ids):
        ends = ops.cast(ops.equal(token_ids, self.end_id), "int32")
        document = ops.cumsum(ends, axis=1) - ends  # the end token belongs to its document
        return ops.cast(ops.equal(document[:, :, None], document[:, None, :]), "int32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[1])

    def get_config(self):
        return {**super().get_config(), "end_id": self.end_id}
