"""Resident memory of encoding the last `--mb` million characters of a corpus in batches
of `--batch` characters with a prepared dataset's bpe tokenizer, with and without handing
freed heap pages back after each batch (`release_freed_memory`, glibc's malloc_trim).

    .venv/bin/python benchmarks/encode_memory.py TOKENIZER.json CORPUS.jsonl [--trim]
        [--batch 2000000]

TOKENIZER.json: a prepared dataset's `tokenizer/bpe.json` (benchmarks/data_scale.py
leaves one under /tmp/kplug-data-scale/cache_200M/). Run it once without and once with
`--trim` (two processes: a heap's history is the point).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from collections import deque

import numpy as np
import psutil


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokenizer")
    parser.add_argument("corpus")
    parser.add_argument("--mb", type=float, default=30)
    parser.add_argument("--trim", action="store_true")
    parser.add_argument("--batch", type=int, default=2_000_000, help="characters per batch")
    args = parser.parse_args()
    from kplug_text.preparation import release_freed_memory
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(args.tokenizer)
    tail, size = deque(), 0  # the last documents only: the peak is the encoding's
    with open(args.corpus, encoding="utf-8") as handle:
        for line in handle:
            tail.append(json.loads(line)["text"])
            size += len(tail[-1])
            while size - len(tail[0]) >= args.mb * 1e6:
                size -= len(tail.popleft())
    tail = list(tail)
    process = psutil.Process()
    release_freed_memory()
    start, peak, batch, characters = process.memory_info().rss, 0, [], 0
    for number, text in enumerate(tail):
        batch.append(text)
        characters += len(text)
        if characters >= args.batch or number == len(tail) - 1:
            ids = [np.asarray(e.ids, np.uint16) for e in tokenizer.encode_batch_fast(batch)]
            peak = max(peak, process.memory_info().rss)
            del ids
            batch, characters = [], 0
            if args.trim:
                release_freed_memory()
    peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(f"batches of {args.batch:,} characters, {'with' if args.trim else 'without'} "
          f"release_freed_memory: RSS {start / 1e6:.0f} MB "
          f"before, peak {peak / 1e6:.0f} MB (+{(peak - start) / 1e6:.0f}), "
          f"{process.memory_info().rss / 1e6:.0f} MB after")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
