"""`wordpiece`: a WordPiece vocabulary computed by keras-hub (`compute_word_piece_vocabulary`,
tensorflow-text's learner) and applied by keras-hub's `WordPieceTokenizer` (BERT style)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

import kplug
from kplug_text.components import Tokenizer
from kplug_text.vocabulary import TokenizerConfig, check_vocabulary_size

# The learner searches a count threshold and accepts a vocabulary within 5% of the target
# (its `slack_ratio`); only a shortfall beyond that means the corpus is too small.
LEARNER_SLACK = 0.05


class WordPieceConfig(TokenizerConfig):
    vocab_size: int = Field(1000, gt=0, description="tokens, special tokens included")
    strip_accents: bool = Field(False, description="remove accent marks before tokenizing")
    pad_token: str = "[PAD]"
    unk_token: str = "[UNK]"
    end_token: str = "[SEP]"
    extra_tokens: list[str] = ["[CLS]", "[MASK]"]


class WordPieceTokenizer(Tokenizer):
    """WordPiece on words split at whitespace and punctuation; `decode(encode(text))` is
    those words joined by single spaces (lowercased if `lowercase`)."""

    def __init__(self, config: WordPieceConfig, ctx: kplug.RunContext | None = None):
        self.config = config
        self.tokenizer = None

    def train(self, texts: list[str]) -> None:
        import tensorflow as tf
        from keras_hub.tokenizers import compute_word_piece_vocabulary

        c = self.config
        vocabulary = compute_word_piece_vocabulary(
            tf.data.Dataset.from_tensor_slices(texts),
            c.vocab_size,
            lowercase=c.lowercase,
            strip_accents=c.strip_accents,
            reserved_tokens=c.special_tokens(),
        )
        check_vocabulary_size("wordpiece", len(vocabulary), c.vocab_size, slack=LEARNER_SLACK)
        self._set(list(vocabulary))

    def _set(self, vocabulary: list[str]) -> None:
        from keras_hub.tokenizers import WordPieceTokenizer as KerasHubWordPiece

        c = self.config
        missing = [t for t in c.special_tokens() if t not in vocabulary]
        if missing or vocabulary[0] != c.pad_token:
            raise kplug.DataError(
                f"the WordPiece vocabulary must start with the padding token {c.pad_token!r} "
                f"and hold the special tokens; missing: {missing or [c.pad_token]}. Set "
                "pad_token/unk_token/end_token/extra_tokens to the vocabulary's own."
            )
        self.vocabulary = vocabulary
        self.tokenizer = KerasHubWordPiece(
            vocabulary=vocabulary,
            lowercase=c.lowercase,
            strip_accents=c.strip_accents,
            oov_token=c.unk_token,
        )
        self.vocabulary_size = len(vocabulary)
        index = {token: i for i, token in enumerate(vocabulary)}
        roles = ("pad", "unk", "end", *c.extra_tokens)
        self.special_ids = {r: index[t] for r, t in zip(roles, c.special_tokens(), strict=True)}

    def normalize(self, text: str) -> str:
        # keras-hub's own splitting, so this is exactly what decode(encode(text)) gives.
        from keras_hub.src.tokenizers.word_piece_tokenizer import pretokenize_python

        c = self.config
        return " ".join(pretokenize_python(text, c.lowercase, c.strip_accents))

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        ids = self.tokenizer.tokenize(texts)
        # keras-hub answers in Python lists, or in ragged tensors on its tf.data path.
        return ids.to_list() if hasattr(ids, "to_list") else [list(map(int, r)) for r in ids]

    def decode(self, ids: list[int]) -> str:
        specials = set(self.special_ids.values()) - {self.special_ids["unk"]}
        text = self.tokenizer.detokenize([[int(i) for i in ids if int(i) not in specials]])[0]
        return text.numpy().decode("utf-8") if hasattr(text, "numpy") else text

    def in_graph(self):
        """The TensorFlow twin of `encode_batch`: its own keras-hub layer."""
        from kplug_text.graph_tokenizers import KerasHubIds

        return KerasHubIds(self.tokenizer)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / "vocab.txt"
        path.write_text("".join(f"{token}\n" for token in self.vocabulary), encoding="utf-8")
        return path

    def load(self, path: Path) -> None:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        self._set([line for line in lines if line])
