"""In-graph twins of kplug's tokenizers: TensorFlow modules that map a batch of strings
to the same token ids as the Python tokenizer, so a SavedModel can take raw text.

Each twin is a `tf.Module` (a trackable that holds its lookup tables), called on a 1-D
`tf.string` tensor and returning a `tf.RaggedTensor` of int32 ids. A tokenizer offers
its twin through `in_graph()`; a tokenizer without that method has none. The keras-hub
and tf-text ops inside some twins need `import tensorflow_text` in the process that
loads the SavedModel.
"""

from __future__ import annotations

import json

import tensorflow as tf


class CharacterIds(tf.Module):
    """`char`: one id per Unicode character, unknown characters the `unk` id.

    Args:
        tokens: the vocabulary (special tokens first), as `characters.json` holds it.
        unk: the unknown token's id.
        lowercase: lowercase the text first (`tf.strings.lower` on UTF-8).
    """

    def __init__(self, tokens: list[str], unk: int, lowercase: bool):
        super().__init__(name="character_ids")
        self.lowercase = lowercase
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(tokens), tf.range(len(tokens), dtype=tf.int32)
            ),
            default_value=unk,
        )

    def __call__(self, texts: tf.Tensor) -> tf.RaggedTensor:
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        characters = tf.strings.unicode_split(texts, "UTF-8")
        return tf.ragged.map_flat_values(self.table.lookup, characters)


class ByteIds(tf.Module):
    """`byte`: one id per UTF-8 byte, the byte's value plus `offset` (the special tokens)."""

    def __init__(self, offset: int, lowercase: bool):
        super().__init__(name="byte_ids")
        self.offset = offset
        self.lowercase = lowercase

    def __call__(self, texts: tf.Tensor) -> tf.RaggedTensor:
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        pieces = tf.strings.bytes_split(texts)
        return tf.ragged.map_flat_values(self._ids, pieces)

    def _ids(self, single_bytes: tf.Tensor) -> tf.Tensor:
        values = tf.io.decode_raw(single_bytes, tf.uint8, fixed_length=1)[:, 0]
        return tf.cast(values, tf.int32) + self.offset


class KerasHubIds(tf.Module):
    """A keras-hub tokenizer layer (WordPiece, byte-pair, SentencePiece), its output cast
    to int32.

    Args:
        layer: the keras-hub tokenizer.
        lowercase_characters: lowercase each character on its own first, as the
            `tokenizers` library's `Lowercase` normalizer does (so a final capital sigma
            becomes "σ", where Python's `str.lower` gives "ς").
    """

    def __init__(self, layer, lowercase_characters: bool = False):
        super().__init__(name="keras_hub_ids")
        self.layer = layer
        self.lowercase_characters = lowercase_characters

    def __call__(self, texts: tf.Tensor) -> tf.RaggedTensor:
        if self.lowercase_characters:
            characters = tf.strings.unicode_split(texts, "UTF-8")
            lowered = tf.ragged.map_flat_values(tf.strings.lower, characters, encoding="utf-8")
            texts = tf.strings.reduce_join(lowered, axis=-1)
        ids = self.layer(texts)
        if isinstance(ids, list):  # keras-hub answers eager calls in Python lists
            return tf.ragged.constant(ids, dtype=tf.int32, ragged_rank=1)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        return tf.cast(ids, tf.int32)


def byte_pair_ids(saved: str, lowercase: bool, special_tokens: list[str]) -> KerasHubIds:
    """The twin of a byte-level BPE of the `tokenizers` library (`saved`: its JSON, as
    `bpe.json` holds it): keras-hub's `BytePairTokenizer` (GPT-2's pre-tokenization and
    byte alphabet) with its vocabulary and merges, special tokens kept whole."""
    from keras_hub.tokenizers import BytePairTokenizer

    model = json.loads(saved)["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    layer = BytePairTokenizer(
        vocabulary=model["vocab"],
        merges=merges,
        unsplittable_tokens=special_tokens,
        dtype="int32",
    )
    return KerasHubIds(layer, lowercase_characters=lowercase)
