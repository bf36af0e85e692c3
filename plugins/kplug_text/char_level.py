"""Character and byte level tokenizers: no training library needed."""

from __future__ import annotations

import collections
import json
from pathlib import Path

from pydantic import Field

import kplug
from kplug_text.components import Tokenizer
from kplug_text.vocabulary import TokenizerConfig, check_vocabulary_size


class CharTokenizerConfig(TokenizerConfig):
    vocab_size: int | None = Field(
        None,
        gt=0,
        description="keep the most frequent characters up to this size (special tokens "
        "included); null: every character of the training text",
    )


class CharTokenizer(Tokenizer):
    """One token per Unicode character; unseen characters become the unknown token."""

    def __init__(self, config: CharTokenizerConfig, ctx: kplug.RunContext | None = None):
        self.config = config
        self.tokens: list[str] = []

    def train(self, texts: list[str]) -> None:
        specials = self.config.special_tokens()
        counts = collections.Counter()
        for text in texts:
            counts.update(self.normalize(text))
        wanted = self.config.vocab_size
        check_vocabulary_size("char", len(specials) + len(counts), wanted)
        keep = None if wanted is None else wanted - len(specials)
        # Ties broken by character so the vocabulary does not depend on document order.
        ranked = sorted(counts, key=lambda ch: (-counts[ch], ch))[:keep]
        self._set([*specials, *sorted(ranked)])

    def _set(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.ids = {token: index for index, token in enumerate(tokens)}
        n = len(self.config.special_tokens())
        self.special_ids = dict(zip(("pad", "unk", "end"), range(3), strict=False))
        self.special_ids.update({t: i for i, t in enumerate(self.config.extra_tokens, start=3)})
        self.first_character = n
        self.vocabulary_size = len(tokens)

    def normalize(self, text: str) -> str:
        return text.lower() if self.config.lowercase else text

    def encode(self, text: str) -> list[int]:
        unk = self.special_ids["unk"]
        return [self.ids.get(ch, unk) for ch in self.normalize(text)]

    def decode(self, ids: list[int]) -> str:
        unk = self.special_ids["unk"]
        return "".join(
            self.tokens[i] if i >= self.first_character else "\ufffd" if i == unk else ""
            for i in map(int, ids)
        )

    def in_graph(self):
        """The TensorFlow twin of `encode_batch` (see graph_tokenizers.py)."""
        from kplug_text.graph_tokenizers import CharacterIds

        return CharacterIds(self.tokens, self.special_ids["unk"], self.config.lowercase)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / "characters.json"
        path.write_text(json.dumps(self.tokens, ensure_ascii=False), encoding="utf-8")
        return path

    def load(self, path: Path) -> None:
        tokens = json.loads(Path(path).read_text(encoding="utf-8"))
        specials = self.config.special_tokens()
        if tokens[: len(specials)] != specials:
            raise kplug.DataError(
                f"{path}: its special tokens {tokens[: len(specials)]} differ from the "
                f"tokenizer's {specials}; set pad_token/unk_token/end_token to match."
            )
        self._set(tokens)


class ByteTokenizerConfig(kplug.Config):
    lowercase: bool = Field(False, description="lowercase text before tokenizing")


class ByteTokenizer(Tokenizer):
    """One token per UTF-8 byte (ids 3..258) after padding 0, unknown 1 (unused) and end 2:
    any text round-trips exactly, nothing to train."""

    SPECIALS = 3

    def __init__(self, config: ByteTokenizerConfig, ctx: kplug.RunContext | None = None):
        self.config = config
        self.special_ids = {"pad": 0, "unk": 1, "end": 2}
        self.vocabulary_size = 256 + self.SPECIALS

    def train(self, texts: list[str]) -> None:
        pass  # the vocabulary is every byte

    def normalize(self, text: str) -> str:
        return text.lower() if self.config.lowercase else text

    def encode(self, text: str) -> list[int]:
        return [b + self.SPECIALS for b in self.normalize(text).encode("utf-8")]

    def decode(self, ids: list[int]) -> str:
        data = bytes(i - self.SPECIALS for i in map(int, ids) if i >= self.SPECIALS)
        return data.decode("utf-8", errors="replace")

    def in_graph(self):
        """The TensorFlow twin of `encode_batch` (see graph_tokenizers.py)."""
        from kplug_text.graph_tokenizers import ByteIds

        return ByteIds(self.SPECIALS, self.config.lowercase)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / "bytes.json"
        path.write_text(json.dumps({"specials": self.SPECIALS}), encoding="utf-8")
        return path

    def load(self, path: Path) -> None:
        pass  # nothing learned
