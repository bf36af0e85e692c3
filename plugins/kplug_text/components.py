"""The text plugin's component base classes: cleaning steps and tokenizers. Other plugins
subclass them and register theirs through `register_cleaners` / `register_tokenizers`
(declared in `kplug_text.hookspecs`)."""

from __future__ import annotations

from pathlib import Path


class Cleaner:
    """One text cleaning step: a transformation, a filter or a deduplication."""

    def clean(self, texts: list[str]) -> list[str | None]:
        """One entry per text: the cleaned text, or None to remove the document."""
        raise NotImplementedError


class Tokenizer:
    """Text to token ids and back, trained on a corpus or loaded from its saved files.

    Id 0 is always the padding token. Subclasses set `vocabulary_size` and `special_ids`
    (role -> id: `pad`, `unk`, `end`, ...) once trained or loaded.
    """

    vocabulary_size: int = 0
    special_ids: dict[str, int]

    def train(self, texts: list[str]) -> None:
        """Learn the vocabulary from `texts`; raise `kplug.DataError` if they cannot
        support the configured vocabulary size."""
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def normalize(self, text: str) -> str:
        """The text as `decode(encode(text))` returns it (lowercased, split, ...)."""
        return text

    def save(self, directory: Path) -> Path:
        """Write the vocabulary into one file in `directory`; returns its path."""
        raise NotImplementedError

    def load(self, path: Path) -> None:
        """Read a vocabulary file as `save` writes it (instead of training)."""
        raise NotImplementedError
