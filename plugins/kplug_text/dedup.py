"""Deduplication steps: exact (hash) and near-duplicate (MinHash LSH) removal."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, PositiveInt

import kplug
from kplug_text.components import Cleaner

WORD = re.compile(r"\w+")
SHINGLES = 4096  # per MinHash update: bounds its uint64 matrix to num_perm x 4096


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
    """Near-duplicate removal: MinHash signatures of each document's shingles, banded as in
    datasketch's MinHash LSH; a document that shares a band with an earlier kept one
    (estimated Jaccard similarity above `threshold`) is removed, the first one is kept."""

    def __init__(self, config: MinhashDedupConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def in_graph(self):
        """At prediction a filter's verdict on one input is ignored: it is kept as is."""
        return unchanged

    def clean(self, texts: list[str]) -> list[str | None]:
        return drop_repeats(texts, self.keys(texts), self.index())

    def keys(self, texts: list[str]) -> list[tuple[int, ...]]:
        """Each text's LSH band keys (`band_keys`): a few integers, computed in worker
        processes by a streaming preparation."""
        from datasketch import MinHash

        template = MinHash(num_perm=self.config.num_perm, seed=self.config.seed)
        out = []
        for text in texts:
            signature = template.copy()
            for chunk in self.shingle_chunks(text):
                signature.update_batch(chunk)
            out.append(band_keys(signature.hashvalues, self.config.threshold, self.config.num_perm))
        return out

    def index(self) -> NearDuplicateIndex:
        return NearDuplicateIndex()

    def shingle_chunks(self, text: str) -> Iterator[list[bytes]]:
        """The document's n-grams as bytes (a short document is one shingle), SHINGLES at a
        time: MinHash's permuted-hash matrix is `num_perm` x shingles of uint64, 100 MB for
        one document of 750,000 characters at once, 4 MB a chunk."""
        n = self.config.shingle_size
        if self.config.shingle == "words":
            units = WORD.findall(text.lower())
            count, gram = len(units) - n + 1, lambda i: " ".join(units[i : i + n])
            whole = " ".join(units)
        else:
            count, gram = len(text) - n + 1, lambda i: text[i : i + n]
            whole = text
        if count <= 0:
            yield [whole.encode("utf-8")]
            return
        for first in range(0, count, SHINGLES):
            yield [gram(i).encode("utf-8") for i in range(first, min(count, first + SHINGLES))]


@functools.cache
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's MinHash LSH (bands, rows per band) for the threshold: the pair that
    minimizes the weighted false positive and false negative probabilities."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def band_keys(hashvalues: Any, threshold: float, num_perm: int) -> tuple[int, ...]:
    """One 60-bit BLAKE2b key per LSH band of a MinHash signature, the band number mixed in:
    two documents share a key exactly when datasketch's `MinHashLSH` would make them
    candidates through that band (up to a 2**-60 chance of a collision)."""
    bands, rows = lsh_bands(threshold, num_perm)
    keys = []
    for band in range(bands):
        row = hashvalues[band * rows : (band + 1) * rows].tobytes()
        digest = hashlib.blake2b(row, digest_size=8, person=b"band%d" % band).digest()
        keys.append(int.from_bytes(digest, "little") >> 4)  # < 2**60: a 32-byte int
    return tuple(keys)


class NearDuplicateIndex:
    """The LSH band keys of the documents kept so far, in one set.

    datasketch's `MinHashLSH` keeps, per kept document, its key list and a set in each
    band's table: 3.4 KB a document at 128 permutations (9 bands). Deduplication only
    asks whether any band matches, so the band keys alone answer it, at about 700 bytes a
    document (nine Python ints and their set slots).
    """

    def __init__(self):
        self.seen: set[int] = set()

    def seen_before(self, number: int, keys: tuple[int, ...]) -> bool:
        """Whether a kept document shares a band with `keys`; if not, keeps this one."""
        if not self.seen.isdisjoint(keys):
            return True
        self.seen.update(keys)
        return False


def drop_repeats(texts: list[str], keys: list, index) -> list[str | None]:
    """Each text, or None when `index` saw its key before (the first one is kept)."""
    return [None if index.seen_before(i, key) else text
            for i, (text, key) in enumerate(zip(texts, keys, strict=True))]  # fmt: skip


def unchanged(texts):
    """The in-graph twin of a filter (see `in_graph`)."""
    return texts
