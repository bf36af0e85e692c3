"""`vader_pairs`: sentence-pair data made from the VADER lexicon (see vader_sentiment.py):
two rated tokens per example, labelled `first` or `second` by which has the higher mean
rating. The tokens are split first (the by-document split of `text_data`, over tokens),
and pairs are made within each split, so no token of a test pair is seen in training."""

from __future__ import annotations

import numpy as np
from pydantic import Field, PositiveInt, model_validator

import kplug
from kplug_text.corpus import (
    Corpus,
    TextDataConfig,
    pair_data_problem,
    split_documents,
    text_data,
)
from kplug_text.vader_sentiment import lexicon_path, vader_entries


class VaderPairsConfig(TextDataConfig):
    min_rating_gap: float = Field(
        1.0, gt=0.0, le=7.0,
        description="pair only tokens whose mean ratings differ by at least this much",
    )  # fmt: skip
    pairs_per_token: PositiveInt = Field(
        2, description="pairs started from each token, its partner drawn from its own split"
    )
    pair_seed: int = Field(0, description="seed of the partners and of the order in each pair")

    @model_validator(mode="after")
    def _serves_pairs(self) -> VaderPairsConfig:
        if problem := pair_data_problem(self):
            raise ValueError(problem)
        return self


def rating_pairs(
    ratings: np.ndarray, per_token: int, min_gap: float, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Distinct pairs of indices into `ratings` whose ratings differ by at least `min_gap`:
    `per_token` tries per index, its partner drawn uniformly from those far enough."""
    order = np.argsort(ratings, kind="stable")
    ranked = ratings[order]
    gap = min_gap - 1e-9  # a gap of 1.5 between -2.8 and -1.3 is 1.4999999999999998
    seen: set[frozenset[int]] = set()
    pairs = []
    for index in range(len(ratings)):
        below = int(np.searchsorted(ranked, ratings[index] - gap, side="right"))
        above = int(np.searchsorted(ranked, ratings[index] + gap, side="left"))
        candidates = below + len(ranked) - above
        for _ in range(per_token if candidates else 0):
            draw = int(rng.integers(candidates))
            partner = int(order[draw if draw < below else above + draw - below])
            key = frozenset((index, partner))
            if key not in seen:
                seen.add(key)
                pairs.append((index, partner))
    return pairs


def vader_pair_corpus(config: VaderPairsConfig) -> Corpus:
    """The pairs of every split, each split's pairs from its own tokens, labels balanced by
    putting the higher-rated token second in exactly half of each split's pairs."""
    entries = vader_entries()
    rng = np.random.default_rng(config.pair_seed)
    first, second, labels, splits = [], [], [], []
    for split, indices in split_documents(len(entries), config).items():
        tokens = [entries[i] for i in indices]
        ratings = np.array([rating for _, rating in tokens])
        pairs = rating_pairs(ratings, config.pairs_per_token, config.min_rating_gap, rng)
        higher_second = rng.permutation(len(pairs)) < len(pairs) // 2
        for (a, b), swap in zip(pairs, higher_second, strict=True):
            low, high = sorted((a, b), key=lambda i: ratings[i])
            a, b = (low, high) if swap else (high, low)
            first.append(tokens[a][0])
            second.append(tokens[b][0])
            labels.append("second" if swap else "first")
            splits.append(split)
    return Corpus(first, labels, source=f"vaderSentiment {lexicon_path().name}, pairs",
                  pairs=second, splits=splits)  # fmt: skip


def load_vader_pairs(config: VaderPairsConfig, ctx: kplug.RunContext) -> kplug.Data:
    return text_data(vader_pair_corpus(config), config, ctx)


def estimate_vader_pairs(config: VaderPairsConfig, facts: dict) -> dict:
    # An upper bound: tokens without a partner far enough, and repeated pairs, make fewer.
    pairs = len(vader_entries()) * config.pairs_per_token
    return {"documents": pairs, "num_classes": 2, "input_dtype": "text"}
