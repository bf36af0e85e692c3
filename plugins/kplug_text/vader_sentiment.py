"""`vader_sentiment`: the 7,500 human-rated entries of the VADER sentiment lexicon
(`vadersentiment`'s vader_lexicon.txt: a word, emoticon or slang token and the mean of ten
raters' scores from -4 to +4; 7,506 distinct tokens), labelled by the sign of the mean.
Each token is a document, so the by-document split keeps every token in one split only."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

import kplug
from kplug_text.corpus import Corpus, TextDataConfig, text_data


class VaderSentimentConfig(TextDataConfig):
    min_abs_rating: float = Field(
        0.0, ge=0.0, lt=4.0,
        description="keep only tokens whose mean rating is at least this far from 0",
    )  # fmt: skip


def lexicon_path() -> Path:
    import vaderSentiment

    return Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"


def vader_entries() -> list[tuple[str, float]]:
    """(token, mean rating) per distinct token, in file order. The lexicon lists 14
    tokens twice (`lol`, `ok`, ...); their two means are averaged, so that a token is
    one document and lands in one split."""
    ratings: dict[str, list[float]] = {}
    for line in lexicon_path().read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0]:
            ratings.setdefault(fields[0], []).append(float(fields[1]))
    return [(token, sum(r) / len(r)) for token, r in ratings.items()]


def load_vader_sentiment(config: VaderSentimentConfig, ctx: kplug.RunContext) -> kplug.Data:
    entries = [(t, r) for t, r in vader_entries() if abs(r) > config.min_abs_rating and r]
    corpus = Corpus(
        documents=[token for token, _ in entries],
        labels=["positive" if rating > 0 else "negative" for _, rating in entries],
        source=f"vaderSentiment {lexicon_path().name}",
    )
    return text_data(corpus, config, ctx)


def estimate_vader_sentiment(config: VaderSentimentConfig, facts: dict) -> dict:
    return {"documents": len(vader_entries()), "num_classes": 2, "input_dtype": "text"}
