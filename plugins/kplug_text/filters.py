"""Cleaning steps that drop whole documents: length and quality filters."""

from __future__ import annotations

from pydantic import Field, NonNegativeInt, PositiveInt

import kplug
from kplug_text.components import Cleaner


class LengthFilterConfig(kplug.Config):
    min_characters: NonNegativeInt = Field(1, description="drop shorter documents")
    max_characters: PositiveInt | None = Field(None, description="drop longer documents")
    min_words: NonNegativeInt = Field(0, description="drop documents with fewer words")
    max_words: PositiveInt | None = Field(None, description="drop documents with more words")


class LengthFilter(Cleaner):
    """Drops documents outside a range of characters and words."""

    def __init__(self, config: LengthFilterConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def in_graph(self):
        """At prediction a filter's verdict on one input is ignored: it is kept as is."""
        return unchanged

    def clean(self, texts: list[str]) -> list[str | None]:
        return [text if self._keeps(text) else None for text in texts]

    def _keeps(self, text: str) -> bool:
        c = self.config
        words = len(text.split())
        return (
            len(text) >= c.min_characters
            and (c.max_characters is None or len(text) <= c.max_characters)
            and words >= c.min_words
            and (c.max_words is None or words <= c.max_words)
        )


class QualityFilterConfig(kplug.Config):
    min_alphabetic_ratio: float = Field(
        0.6, ge=0.0, le=1.0,
        description="least share of alphabetic characters among non-space characters",
    )  # fmt: skip
    max_repeated_line_ratio: float = Field(
        0.3, ge=0.0, le=1.0,
        description="largest share of non-empty lines that repeat an earlier line",
    )  # fmt: skip


class QualityFilter(Cleaner):
    """Drops low-quality documents: mostly symbols or digits, or many repeated lines
    (navigation menus, boilerplate, spam)."""

    def __init__(self, config: QualityFilterConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def in_graph(self):
        """At prediction a filter's verdict on one input is ignored: it is kept as is."""
        return unchanged

    def clean(self, texts: list[str]) -> list[str | None]:
        return [text if self._keeps(text) else None for text in texts]

    def _keeps(self, text: str) -> bool:
        return (
            alphabetic_ratio(text) >= self.config.min_alphabetic_ratio
            and repeated_line_ratio(text) <= self.config.max_repeated_line_ratio
        )


def alphabetic_ratio(text: str) -> float:
    """Share of alphabetic characters among the non-whitespace ones (0 for empty text)."""
    visible = [ch for ch in text if not ch.isspace()]
    return sum(ch.isalpha() for ch in visible) / len(visible) if visible else 0.0


def repeated_line_ratio(text: str) -> float:
    """Share of non-empty lines equal to an earlier line of the same document."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return 1 - len(set(lines)) / len(lines) if lines else 0.0


def unchanged(texts):
    """The in-graph twin of a filter (see `in_graph`)."""
    return texts
