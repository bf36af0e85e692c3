"""Deduplication steps: exact (hash) and near-duplicate (MinHash LSH) removal."""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import Field, PositiveInt

import kplug
from kplug_text.components import Cleaner

WORD = re.compile(r"\w+")


class ExactDedupConfig(kplug.Config):
    normalize: bool = Field(
        True, description="compare lowercased text with whitespace collapsed, not raw bytes"
    )


class ExactDedup(Cleaner):
    """Keeps the first of documents with the same (normalized) text, by SHA-1 hash."""

    def __init__(self, config: ExactDedupConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def in_graph(self):
        """At prediction a filter's verdict on one input is ignored: it is kept as is."""
        return unchanged

    def clean(self, texts: list[str]) -> list[str | None]:
        return drop_repeats(texts, self.keys(texts), self.index())

    def keys(self, texts: list[str]) -> list[bytes]:
        """Each text's SHA-1 digest (of its normalized form): what `index()` compares; a
        streaming preparation computes them in worker processes."""
        out = []
        for text in texts:
            key = " ".join(text.lower().split()) if self.config.normalize else text
            out.append(hashlib.sha1(key.encode("utf-8")).digest())
        return out

    def index(self) -> ExactIndex:
        return ExactIndex()


class ExactIndex:
    """The digests seen so far (about 100 bytes per document in a Python set)."""

    def __init__(self):
        self.seen: set[bytes] = set()

    def seen_before(self, number: int, key: bytes) -> bool:
        """Whether `key` was added before; adds it."""
        if key in self.seen:
            return True
        self.seen.add(key)
        return False


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


class MinhashDedup(Cleaner):
    """Near-duplicate removal: MinHash signatures of each document's shingles, indexed in a
    MinHash LSH; a document whose signature matches an earlier kept one above `threshold`
    (estimated Jaccard similarity) is removed, the first one is kept."""

    def __init__(self, config: MinhashDedupConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def in_graph(self):
        """At prediction a filter's verdict on one input is ignored: it is kept as is."""
        return unchanged

    def clean(self, texts: list[str]) -> list[str | None]:
        return drop_repeats(texts, self.keys(texts), self.index())

    def keys(self, texts: list[str]) -> list:
        """Each text's MinHash signature (`LeanMinHash`: picklable, computed in worker
        processes by a streaming preparation)."""
        from datasketch import LeanMinHash, MinHash

        c = self.config
        signatures = MinHash.bulk(
            [self.shingles(text) for text in texts], num_perm=c.num_perm, seed=c.seed
        )
        return [LeanMinHash(s) for s in signatures]

    def index(self) -> NearDuplicateIndex:
        return NearDuplicateIndex(self.config.threshold, self.config.num_perm)

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


class NearDuplicateIndex:
    """A datasketch `MinHashLSH` of the signatures kept so far: in memory, about 1 KB per
    kept document at 128 permutations (datasketch's `storage_config` can put it in Redis
    or Cassandra for corpora whose index outgrows memory)."""

    def __init__(self, threshold: float, num_perm: int):
        from datasketch import MinHashLSH

        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)

    def seen_before(self, number: int, signature) -> bool:
        """Whether a kept document is near `signature`; if not, keeps this one."""
        if self.lsh.query(signature):
            return True
        self.lsh.insert(number, signature, check_duplication=False)
        return False


def drop_repeats(texts: list[str], keys: list, index) -> list[str | None]:
    """Each text, or None when `index` saw its key before (the first one is kept)."""
    return [None if index.seen_before(i, key) else text
            for i, (text, key) in enumerate(zip(texts, keys, strict=True))]  # fmt: skip


def unchanged(texts):
    """The in-graph twin of a filter (see `in_graph`)."""
    return texts
