"""`seq2seq_transformer`: an encoder-decoder transformer from keras-hub layers
(`TokenAndPositionEmbedding`, `TransformerEncoder`, `TransformerDecoder`).

The network takes `{encoder_token_ids, decoder_token_ids}` (padding id 0 is masked through
the embeddings' Keras mask) and returns next-token probabilities for every decoder
position; the decoder attends causally to itself and fully to the encoder output. The
`seq2seq` objective feeds it with teacher forcing.
"""

from __future__ import annotations

from typing import Any

import kplug
from kplug_transformers.config import TransformerConfig


class Seq2SeqTransformerConfig(TransformerConfig):
    """An encoder-decoder transformer; `layers` is the depth of each side."""


def build_seq2seq_transformer(config: Seq2SeqTransformerConfig, ctx: kplug.RunContext) -> Any:
    import keras
    from keras_hub.layers import TokenAndPositionEmbedding, TransformerDecoder, TransformerEncoder

    from kplug_transformers.backbones import use_attention

    spec = ctx.spec
    if config.preset or config.attention == "local" or config.builds_own_blocks:
        raise kplug.RecipeError(
            "seq2seq_transformer is built new from keras-hub layers: it takes no preset and "
            "attention full or flash."
        )
    if spec.input_dtype != "int32" or not spec.vocabulary_size:
        raise kplug.DataError("seq2seq_transformer reads token ids: give the dataset a tokenizer.")
    use_attention(config, ctx)
    length = max(spec.input_shape or (0,))
    if length and length > config.max_length:
        raise kplug.RecipeError(
            f"sequences of {length} tokens are longer than model.max_length: "
            f"{config.max_length}. Lower the objective's sequence_length or raise max_length."
        )

    def embedding(name: str) -> Any:
        return TokenAndPositionEmbedding(
            spec.vocabulary_size, config.max_length, config.hidden, mask_zero=True, name=name
        )

    def block(cls: Any, name: str) -> Any:
        return cls(config.intermediate, config.heads, dropout=config.dropout, name=name)

    # === Functional model ===
    source = keras.Input(shape=(None,), dtype="int32", name="encoder_token_ids")
    target = keras.Input(shape=(None,), dtype="int32", name="decoder_token_ids")
    x = embedding("encoder_embedding")(source)
    for index in range(config.layers):
        x = block(TransformerEncoder, f"encoder_layer_{index}")(x)
    y = embedding("decoder_embedding")(target)
    for index in range(config.layers):
        y = block(TransformerDecoder, f"decoder_layer_{index}")(y, x)
    probabilities = keras.layers.Dense(
        spec.vocabulary_size, activation="softmax", dtype="float32", name="probabilities"
    )(y)
    return keras.Model(
        {"encoder_token_ids": source, "decoder_token_ids": target},
        probabilities,
        name="seq2seq_transformer",
    )
