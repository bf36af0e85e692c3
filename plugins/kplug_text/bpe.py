"""`bpe`: byte-level byte-pair encoding trained with the Hugging Face `tokenizers` library
(the GPT-2 scheme: every byte is in the vocabulary, so any text round-trips)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

import kplug
from kplug_text.components import Tokenizer
from kplug_text.vocabulary import TokenizerConfig, check_vocabulary_size

BYTES = 256


class BpeConfig(TokenizerConfig):
    vocab_size: int = Field(1000, gt=0, description="tokens, special tokens and 256 bytes included")
    min_frequency: int = Field(2, ge=1, description="least count of a pair to merge")
    end_token: str = "<|endoftext|>"

    @model_validator(mode="after")
    def _room_for_merges(self) -> BpeConfig:
        least = BYTES + len(self.special_tokens()) + 1
        if self.vocab_size < least:
            raise ValueError(f"vocab_size must be at least {least} (256 bytes, special tokens, "
                             "one merge)")  # fmt: skip
        return self


class BpeTokenizer(Tokenizer):
    """Byte-level BPE; `decode(encode(text)) == text` (lowercased if `lowercase`)."""

    def __init__(self, config: BpeConfig, ctx: kplug.RunContext | None = None):
        self.config = config
        self.tokenizer = None

    def train(self, texts: list[str]) -> None:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE())
        if self.config.lowercase:
            tokenizer.normalizer = normalizers.Lowercase()
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self.config.vocab_size,
            min_frequency=self.config.min_frequency,
            special_tokens=self.config.special_tokens(),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
        check_vocabulary_size("bpe", tokenizer.get_vocab_size(), self.config.vocab_size)
        self._set(tokenizer)

    def _set(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.vocabulary_size = tokenizer.get_vocab_size()
        roles = ("pad", "unk", "end", *self.config.extra_tokens)
        self.special_ids = {
            role: tokenizer.token_to_id(token)
            for role, token in zip(roles, self.config.special_tokens(), strict=True)
        }
        if self.special_ids["pad"] != 0:
            raise kplug.DataError(
                f"the BPE vocabulary gives {self.config.pad_token!r} id "
                f"{self.special_ids['pad']}, not 0; set pad_token to its padding token."
            )

    def normalize(self, text: str) -> str:
        return text.lower() if self.config.lowercase else text

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # encode_batch_fast (tokenizers >= 0.20) gives the same ids without the character
        # offsets: about 15% faster on the 20 M-character corpus (docs/data.md)
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return [e.ids for e in encode(texts)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def in_graph(self):
        """The TensorFlow twin of `encode_batch` (see graph_tokenizers.py)."""
        from kplug_text.graph_tokenizers import byte_pair_ids

        c = self.config
        return byte_pair_ids(self.tokenizer.to_str(), c.lowercase, c.special_tokens())

    def save(self, directory: Path) -> Path:
        path = Path(directory) / "bpe.json"
        self.tokenizer.save(str(path))
        return path

    def load(self, path: Path) -> None:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # the library raises a bare Exception on bad files
            raise kplug.DataError(f"{path}: not a tokenizers JSON file: {error}") from None
        self._set(tokenizer)
