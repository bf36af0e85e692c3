"""Deduplication steps: exact (hash) and near-duplicate (MinHash LSH) removal."""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import Field, PositiveInt

import kplug

WORD = re.compile(r"\w+")


class ExactDedupConfig(kplug.Config):
    normalize: bool = Field(
        True, description="compare lowercased text with whitespace collapsed, not raw bytes"
    )


class ExactDedup(kplug.Cleaner):
    """Keeps the first of documents with the same (normalized) text, by SHA-1 hash."""

    def __init__(self, config: ExactDedupConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def clean(self, texts: list[str]) -> list[str | None]:
        seen: set[bytes] = set()
        out: list[str | None] = []
        for text in texts:
            key = " ".join(text.lower().split()) if self.config.normalize else text
            digest = hashlib.sha1(key.encode("utf-8")).digest()
            out.append(None if digest in seen else text)
            seen.add(digest)
        return out


class MinhashDedupConfig(kplug.Config):
    threshold: float = Field(
        0.8, gt=0.0, lt=1.0, description="Jaccard similarity above which documents are duplicates"
    )
    num_perm: PositiveInt = Field(128, description="MinHash permutations (more: more exact)")
    shingle: Literal["words", "characters"] = Field(
        "words", description="shingles are n-grams of lowercased words or of characters"
    )
    shingle_size: PositiveInt = Field(5, description="n of the n-grams")
    seed: int = Field(1, description="seed of the MinHash permutations")


class MinhashDedup(kplug.Cleaner):
    """Near-duplicate removal: MinHash signatures of each document's shingles, indexed in a
    MinHash LSH; a document whose signature matches an earlier kept one above `threshold`
    (estimated Jaccard similarity) is removed, the first one is kept."""

    def __init__(self, config: MinhashDedupConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def clean(self, texts: list[str]) -> list[str | None]:
        from datasketch import MinHash, MinHashLSH

        c = self.config
        signatures = MinHash.bulk(
            [self.shingles(text) for text in texts], num_perm=c.num_perm, seed=c.seed
        )
        index = MinHashLSH(threshold=c.threshold, num_perm=c.num_perm)
        out: list[str | None] = []
        for key, (text, signature) in enumerate(zip(texts, signatures, strict=True)):
            if index.query(signature):
                out.append(None)
            else:
                index.insert(key, signature)
                out.append(text)
        return out

    def shingles(self, text: str) -> list[bytes]:
        """The document's n-grams as bytes (a short document is one shingle)."""
        n = self.config.shingle_size
        if self.config.shingle == "words":
            units = WORD.findall(text.lower())
            grams = [" ".join(units[i : i + n]) for i in range(len(units) - n + 1)]
            whole = " ".join(units)
        else:
            grams = [text[i : i + n] for i in range(len(text) - n + 1)]
            whole = text
        return [g.encode("utf-8") for g in (grams or [whole])]
