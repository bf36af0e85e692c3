"""Peak memory of one cleaning worker over a corpus: the issue-16 recipe's cleaning steps
(normalize_unicode, length_filter, exact_dedup keys, minhash_dedup keys) run batch by
batch in this process, as a worker of a streamed preparation runs them.

    .venv/bin/python benchmarks/cleaning_worker_memory.py /tmp/kplug-data-scale/corpus_200M.jsonl

Prints the resident size each time it grows by 5 MB (with the longest document of that
batch) and the peak (`ru_maxrss`) at the end. Build the corpus with
../shared/tools/build_corpus.py (benchmarks/data_scale.py leaves one in /tmp).
"""

from __future__ import annotations

import argparse
import resource
import sys

import psutil

CLEAN = [{"name": "normalize_unicode"}, {"name": "length_filter", "min_characters": 200},
         {"name": "exact_dedup"}, {"name": "minhash_dedup", "threshold": 0.8}]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a JSONL corpus with a `text` field")
    args = parser.parse_args()
    from kplug_text import preparation
    from kplug_text.text_files import TextFilesConfig, document_source

    from kplug.context import RunContext
    from kplug.plugins import registry

    ctx = RunContext(recipe=None, registry=registry())
    preparation._start_worker([ctx.build_nested("cleaner", e) for e in CLEAN], {2, 3})
    process, reported = psutil.Process(), 0
    for number, batch in enumerate(preparation._batches(document_source(
            TextFilesConfig(path=args.corpus)).read())):  # fmt: skip
        preparation.clean_batch(batch)
        rss = process.memory_info().rss
        if rss > reported + 5e6:
            reported = rss
            print(f"batch {number}: RSS {rss / 1e6:.0f} MB (longest document "
                  f"{max(map(len, batch)):,} characters)", flush=True)  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"after {number + 1} batches: RSS {process.memory_info().rss / 1e6:.0f} MB, "
          f"peak {peak:.0f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
