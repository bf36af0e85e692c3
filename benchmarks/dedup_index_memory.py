"""Bytes per kept document of the `minhash_dedup` index against datasketch's `MinHashLSH`
on the same signatures, and whether the two remove the same documents.

    .venv/bin/python benchmarks/dedup_index_memory.py /tmp/kplug-data-scale/corpus_20M.jsonl

The documents are the pydoc topics followed by the corpus' (JSONL, `text` field); memory
is what `tracemalloc` sees allocated by each index while it is filled in corpus order.
"""

from __future__ import annotations

import argparse
import json
import sys
import tracemalloc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a JSONL corpus with a `text` field")
    args = parser.parse_args()
    from pydoc_data.topics import topics

    from datasketch import LeanMinHash, MinHash, MinHashLSH
    from kplug_text.dedup import MinhashDedup, MinhashDedupConfig, NearDuplicateIndex

    with open(args.corpus, encoding="utf-8") as handle:
        docs = [*topics.values(), *(json.loads(line)["text"] for line in handle)]
    dedup = MinhashDedup(MinhashDedupConfig())
    keys = dedup.keys(docs)
    signatures = [LeanMinHash(m) for m in MinHash.bulk(
        [[s for chunk in dedup.shingle_chunks(d) for s in chunk] for d in docs],
        num_perm=128, seed=1)]  # fmt: skip
    tracemalloc.start()
    lsh, datasketch_removed = MinHashLSH(threshold=0.8, num_perm=128), []
    for number, signature in enumerate(signatures):
        datasketch_removed.append(bool(lsh.query(signature)))
        if not datasketch_removed[-1]:
            lsh.insert(number, signature, check_duplication=False)
    datasketch_bytes = tracemalloc.get_traced_memory()[0]
    del lsh
    before = tracemalloc.get_traced_memory()[0]
    index = NearDuplicateIndex()
    removed = [index.seen_before(number, k) for number, k in enumerate(keys)]
    band_key_bytes = tracemalloc.get_traced_memory()[0] - before
    kept = len(docs) - sum(removed)
    print(f"{len(docs):,} documents, {kept:,} kept; the same removed: "
          f"{removed == datasketch_removed}")  # fmt: skip
    print(f"bytes per kept document: band keys {band_key_bytes / kept:,.0f}, datasketch "
          f"MinHashLSH {datasketch_bytes / kept:,.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
