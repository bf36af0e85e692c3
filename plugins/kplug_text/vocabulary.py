"""What every tokenizer config shares, and the vocabulary-size check."""

from __future__ import annotations

from pydantic import Field, PositiveInt

import kplug


class TokenizerConfig(kplug.Config):
    """Options of every trained tokenizer. Special tokens get the first ids, padding 0."""

    vocab_size: PositiveInt | None = Field(
        None, description="tokens in the vocabulary, special tokens included"
    )
    lowercase: bool = Field(False, description="lowercase text before tokenizing")
    vocabulary_file: str | None = Field(
        None,
        description="load this vocabulary file (as the tokenizer saves it) instead of "
        "training on the corpus",
    )
    pad_token: str = Field("<pad>", description="padding, id 0")
    unk_token: str = Field("<unk>", description="unknown token")
    end_token: str = Field("<eot>", description="end of text: separates documents in a stream")
    extra_tokens: list[str] = Field([], description="more special tokens ([CLS], [MASK], ...)")

    def special_tokens(self) -> list[str]:
        """Special tokens in id order: padding, unknown, end of text, then the extras."""
        return [self.pad_token, self.unk_token, self.end_token, *self.extra_tokens]


def check_vocabulary_size(
    tokenizer: str, got: int, wanted: int | None, *, slack: float = 0.0
) -> None:
    """Refuse a vocabulary that came out smaller than asked (beyond the trainer's own
    `slack`, a fraction of `wanted`): the corpus cannot support that size."""
    if wanted is not None and got < wanted * (1 - slack):
        raise kplug.DataError(
            f"tokenizer {tokenizer!r}: vocab_size {wanted} is larger than the cleaned training "
            f"corpus supports (it yields {got} tokens). Lower data.tokenizer.vocab_size to at "
            f"most {got}, or use a larger corpus."
        )
