"""Streaming, parallel preparation of a text corpus into cached token shards.

Two passes over bounded batches of documents, never the whole corpus in memory:

1. read -> clean in worker processes -> deduplicate in order -> cleaned text on disk.
   Workers run every cleaning step on their batch and compute each dedup step's keys
   (SHA-1 digests, MinHash signatures) where the step stands; this process keeps the
   dedup indexes and decides, document by document in corpus order, so the survivors
   are exactly those of cleaning the whole list at once (`pipeline.clean_documents`).
2. split by document (the same seeded split), train the tokenizer on the training
   documents (up to `tokenizer_sample_characters`), encode in batches with the
   tokenizer's own parallelism, and append each split's ids to its token shard.

The result is a folder of the data cache (`kplug.data.cache`), keyed by the dataset's
resolved config and its source files' identity: `index.json`, `<split>.tokens`,
`<split>.offsets.npy`, `tokenizer/`, and `COMPLETE`, written last.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import multiprocessing
import os
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import kplug
from kplug_text.progress import Progress
from kplug_text.token_shards import (
    FORMAT,
    INDEX,
    PaddedDocuments,
    ShardWriter,
    open_labels,
    open_splits,
    token_dtype,
)
from kplug_text.tokenizer_files import FOLDER, load_tokenizer, save_tokenizer, train_tokenizer

log = logging.getLogger("kplug")

SPLITS = ("train", "validation", "test")
DEDUP_CLEANERS = ("exact_dedup", "minhash_dedup")
BATCH_CHARACTERS = 2_000_000  # per worker task: large enough to amortize, small in memory
# Per encode_batch call: the tokenizer's working memory follows the batch (encoding the
# 2 M characters that hold the corpus' long documents takes 265 MB, 500 K 178 MB).
ENCODE_CHARACTERS = 500_000
INLINE_BELOW = 4_000_000  # smaller corpora are cleaned in this process (no worker start-up)
CLEANED = "cleaned.txt"
# Options that change how, or whether, not what is prepared: left out of the cache key
# (`stream: true` and its default prepare unlabelled text alike).
NOT_IN_KEY = ("workers", "stream")

PREPARATIONS = {"count": 0}  # preparations done in this process (tests count them)


@dataclass
class DocumentSource:
    """Where a prepared dataset's documents come from.

    Args:
        name: the dataset name (part of the cache key).
        description: for the data report (`source`).
        identity: what says the input is unchanged (file paths, sizes, mtimes).
        total_bytes: the input's size, for progress and the choice of workers.
        read: yields the documents in corpus order (`(text, label)` pairs when `labelled`);
            raises `kplug.DataError` naming a file that disappears or changes while it is
            read.
        report: entries of the data report; `read` may add to it (e.g. records skipped).
        labelled: the documents come with class labels (strings).
    """

    name: str
    description: str
    identity: Any
    total_bytes: int
    read: Callable[[], Iterator[Any]]
    report: dict[str, Any] = field(default_factory=dict)
    labelled: bool = False


def prepared_text_data(source: DocumentSource, config: Any, ctx: kplug.RunContext) -> kplug.Data:
    """The dataset's splits as memory-mapped `TokenDocuments` (labelled text:
    `PaddedDocuments` and the labels), prepared once per key."""
    settings = {k: v for k, v in config.model_dump(mode="json").items() if k not in NOT_IN_KEY}
    key = kplug.data_cache_key({"format": FORMAT, "dataset": source.name, "config": settings,
                       "source": source.identity})  # fmt: skip
    folder = kplug.find_prepared(key)
    reused = folder is not None
    started = time.perf_counter()
    if folder is None:
        with kplug.preparing_dataset(key) as temporary:
            if temporary is not None:  # None: another process prepared it meanwhile
                prepare(source, config, ctx, temporary, key)
            reused = temporary is None
        folder = kplug.find_prepared(key)
        if folder is None:
            raise kplug.DataError(f"the prepared data {key} vanished from the cache after it "
                                  "was written; is another process clearing it?")  # fmt: skip
    else:
        log.info("data: reusing prepared dataset %s", folder)
    index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    parts = open_splits(folder)
    tokenizer = load_tokenizer(folder / FOLDER, ctx.registry)
    if ctx.directory is not None:
        save_tokenizer(tokenizer, config.tokenizer, ctx.directory / FOLDER)
    report = {
        **index["report"],
        "prepared": {"key": key, "path": str(folder), "reused": reused,
                     "seconds": round(time.perf_counter() - started, 3)},
    }  # fmt: skip
    spec = kplug.DataSpec(input_shape=(None,), input_dtype="int32",
                          vocabulary_size=tokenizer.vocabulary_size)  # fmt: skip
    spec.extras.update(text_form="ragged", tokenizer=tokenizer, prepared=str(folder))
    if "class_names" in index:
        return _labelled_data(folder, index, parts, spec, report, config)
    splits = {s: None if parts.get(s) is None else (parts[s], None) for s in SPLITS}
    return kplug.Data(**splits, spec=spec, report=report)


def _labelled_data(folder: Path, index: dict, parts: dict, spec: kplug.DataSpec,
                   report: dict, config: Any) -> kplug.Data:  # fmt: skip
    """Labelled text as in memory (`corpus.text_data`): documents padded to
    `sequence_length` (or the longest training document), read from the shard by rows."""
    labels = open_labels(folder)
    train = parts.get("train")
    length = config.sequence_length or int(
        (np.diff(train.offsets) - (train.end_id is not None)).max()
    )
    spec.input_shape, spec.extras["text_form"] = (length,), "padded"
    spec.class_names = list(index["class_names"])
    spec.num_classes = len(spec.class_names)
    splits = {s: None if parts.get(s) is None else (PaddedDocuments(parts[s], length), labels[s])
              for s in SPLITS}  # fmt: skip
    return kplug.Data(**splits, spec=spec, report=report)


def prepare(source: DocumentSource, config: Any, ctx: kplug.RunContext, folder: Path,
            key: str) -> None:  # fmt: skip
    """Write the prepared dataset of `source` into `folder` (see module doc).

    Raises:
        kplug.DataError: naming the file or folder that cannot be read or written (a full
            disk, a source file that cannot be read).
    """
    PREPARATIONS["count"] += 1
    log.info("data: preparing %s into %s", source.description, folder.parent / key)
    try:
        _prepare(source, config, ctx, folder, key)
    except OSError as error:
        where = error.filename or folder.parent
        if not str(where).startswith(str(folder.parent)):
            raise kplug.DataError(
                f"cannot read {where}: {error.strerror or error}; check that the data files "
                "exist and are readable."
            ) from None
        raise kplug.DataError(
            f"cannot write the prepared data to {where}: {error.strerror or error}. Free disk "
            "space there, or set KPLUG_DATA_CACHE to a folder with room (the preparation "
            "needs about the corpus size, twice while it runs)."
        ) from None


def _prepare(source: DocumentSource, config: Any, ctx: kplug.RunContext, folder: Path,
             key: str) -> None:  # fmt: skip
    started = time.perf_counter()
    cleaned = _clean_pass(source, config, ctx, folder)
    parts = _split(cleaned.count, config)
    tokenizer, train_seconds, sample = _train_tokenizer(cleaned, parts, config, ctx)
    shards, encoding = _encode_pass(folder, cleaned, parts, tokenizer)
    (folder / CLEANED).unlink()
    save_tokenizer(tokenizer, config.tokenizer, folder / FOLDER)
    report = {
        "source": source.description,
        **source.report,
        "documents": {"input": cleaned.documents_in, "after_cleaning": cleaned.count,
                      **{s: int(len(parts[s])) for s in SPLITS}},
        "cleaning": cleaned.rows,
        "tokenizer": {
            "name": config.tokenizer["name"],
            "vocabulary_size": tokenizer.vocabulary_size,
            "source": config.tokenizer.get("vocabulary_file") or f"trained on {sample} texts",
            "tokens": encoding["tokens"],
            "characters_per_token": round(encoding["train_characters"]
                                          / max(encoding["train_tokens"], 1), 3),
            "train_seconds": round(train_seconds, 3),
            "encode_seconds": round(encoding["seconds"], 3),
        },
    }  # fmt: skip
    from kplug_text.corpus import warn_about_empty_splits

    warn_about_empty_splits(parts, config, source.description, report)
    index = {"format": FORMAT, "key": key, "dtype": token_dtype(tokenizer.vocabulary_size).str,
             "end_id": _end_id(tokenizer), "splits": shards, "report": report}  # fmt: skip
    if cleaned.class_names is not None:
        index["class_names"] = cleaned.class_names
    kplug.write_durably(folder / INDEX, json.dumps(index, indent=2).encode("utf-8"))
    seconds = time.perf_counter() - started
    kplug.mark_prepared(folder, {"dataset": source.name, "source": source.description,
                           "documents": cleaned.count, "tokens": encoding["tokens"],
                           "seconds": round(seconds, 1)})  # fmt: skip
    log.info("data: prepared %s documents, %s tokens in %.1f s", f"{cleaned.count:,}",
             f"{encoding['tokens']:,}", seconds)  # fmt: skip


def release_freed_memory() -> None:
    """Hand the pages the allocator holds free back to the system (glibc's `malloc_trim`;
    nothing elsewhere). Encoding a batch allocates from the tokenizer's Rust threads and
    Python and leaves the heap fragmented: without this, resident memory climbs batch
    after batch, with the corpus (after encoding the last 30 M characters of the 200 M
    corpus: 317 MB without, 149 MB with, benchmarks/encode_memory.py; `malloc_trim` takes
    well under a millisecond)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _end_id(tokenizer) -> int | None:
    return getattr(tokenizer, "special_ids", {}).get("end")


# ---------------------------------------------------------------------------------------
# Pass 1: clean and deduplicate
# ---------------------------------------------------------------------------------------


@dataclass
class CleanedText:
    """The survivors of cleaning, in `folder/cleaned.txt` (UTF-8, back to back)."""

    path: Path
    offsets: array  # byte offset of each document and the end: 8 bytes per document
    documents_in: int
    rows: list[dict[str, Any]]
    labels: np.ndarray | None = None  # labelled text: each survivor's class, 4 bytes
    class_names: list[str] | None = None  # sorted, as in memory

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def batches(self, indices: Iterable[int] | None = None,
                characters: int = BATCH_CHARACTERS) -> Iterator[list[tuple[int, str]]]:  # fmt: skip
        """(document number, text) in order, in batches of about `characters`."""
        wanted = range(self.count) if indices is None else indices
        batch, size = [], 0
        with open(self.path, "rb") as handle:
            for i in wanted:
                handle.seek(self.offsets[i])
                text = handle.read(self.offsets[i + 1] - self.offsets[i]).decode("utf-8")
                batch.append((i, text))
                size += len(text)
                if size >= characters:
                    yield batch
                    batch, size = [], 0
        if batch:
            yield batch


def _clean_pass(source: DocumentSource, config: Any, ctx: kplug.RunContext,
                folder: Path) -> CleanedText:  # fmt: skip
    steps = list(config.clean)
    cleaners = [ctx.build_nested("cleaner", entry) for entry in steps]
    dedup = {j for j, entry in enumerate(steps) if entry["name"] in DEDUP_CLEANERS}
    indexes = {j: cleaners[j].index() for j in dedup}
    rows = [{"docs_in": 0, "chars_in": 0, "docs_out": 0, "chars_out": 0, "seconds": 0.0}
            for _ in steps]  # fmt: skip
    offsets = array("q", [0])
    labels = ClassLabels() if source.labelled else None
    number = 0
    progress = Progress("cleaning", source.total_bytes)
    workers = _workers(config, source.total_bytes)
    batches = _batches(source.read(), source.labelled)
    with open(folder / CLEANED, "wb") as out:
        for texts, batch_labels, result in _map_batches(cleaners, dedup, batches, workers):
            kept_texts, lengths, drops, keys, seconds = result
            for j, s in enumerate(seconds):
                rows[j]["seconds"] += s
            decided = time.perf_counter()
            for i, text in enumerate(kept_texts):
                if _survives(number, i, lengths[i], drops[i], keys, dedup, indexes, rows):
                    data = text.encode("utf-8")
                    out.write(data)
                    offsets.append(offsets[-1] + len(data))
                    if labels is not None:
                        labels.add(batch_labels[i])
                number += 1
            for j in dedup:
                rows[j]["seconds"] += (time.perf_counter() - decided) / len(dedup)
            progress.update(sum(len(t) for t in texts), len(texts))
    progress.finish()
    if number == 0:
        raise kplug.DataError(
            f"no documents in {source.description} (its files are empty or hold no "
            "records); give data.path files with text."
        )
    report = [_row(entry["name"], row) for entry, row in zip(steps, rows, strict=True)]
    if len(offsets) == 1:
        last = next(r for r in report if r["documents_out"] == 0)
        raise kplug.DataError(
            f"{source.description}: the corpus is empty after cleaning: step {last['step']!r} "
            f"removed the last {last['documents_in']} documents. Loosen that step's "
            "parameters or remove it from data.clean."
        )
    cleaned = CleanedText(folder / CLEANED, offsets, number, report)
    if labels is not None:
        cleaned.labels, cleaned.class_names = labels.sorted()
    return cleaned


class ClassLabels:
    """The class of each surviving document, as a code in order of first appearance (4
    bytes per document, one dict entry per class), renumbered by sorted name at the end."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values = array("i")

    def add(self, label: str) -> None:
        self.values.append(self.codes.setdefault(label, len(self.codes)))

    def sorted(self) -> tuple[np.ndarray, list[str]]:
        names = sorted(self.codes)
        renumber = np.empty(len(names), dtype=np.int32)
        for rank, name in enumerate(names):
            renumber[self.codes[name]] = rank
        return renumber[np.asarray(self.values, dtype=np.int64)], names


def _survives(number, i, lengths, drop, keys, dedup, indexes, rows) -> bool:
    """Walk document `number` through the steps, counting it into each row it enters."""
    for j, row in enumerate(rows):
        row["docs_in"] += 1
        row["chars_in"] += lengths[j]
        if j in dedup:
            if indexes[j].seen_before(number, keys[j][i]):
                return False
        elif drop == j:
            return False
        row["docs_out"] += 1
        row["chars_out"] += lengths[j + 1]
    return True


def _row(step: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": step,
        "documents_in": row["docs_in"],
        "documents_removed": row["docs_in"] - row["docs_out"],
        "characters_removed": row["chars_in"] - row["chars_out"],
        "documents_out": row["docs_out"],
        "characters_out": row["chars_out"],
        "seconds": round(row["seconds"], 3),
    }


def _batches(documents: Iterator[Any], labelled: bool):
    """(texts, their labels or None) of about `BATCH_CHARACTERS`."""
    batch, labels, size = [], [], 0
    for document in documents:
        text, label = document if labelled else (document, None)
        batch.append(text)
        labels.append(label)
        size += len(text)
        if size >= BATCH_CHARACTERS:
            yield batch, labels if labelled else None
            batch, labels, size = [], [], 0
    if batch:
        yield batch, labels if labelled else None


def _workers(config: Any, total_bytes: int) -> int:
    """`data.workers`; unset: every core, or this process alone for a small corpus."""
    if config.workers:
        return config.workers
    return 1 if total_bytes < INLINE_BELOW else len(os.sched_getaffinity(0))


# The cleaners of a worker process (set once by `_start_worker`).
_WORKER: dict[str, Any] = {}


def _start_worker(cleaners: list[Any], dedup: set[int]) -> None:
    _WORKER.update(cleaners=cleaners, dedup=dedup)


def clean_batch(texts: list[str]):
    """One batch through every step (in a worker): the final texts (None if dropped), each
    document's length before every step and after the last it passed, the step that
    dropped it (-1: none), each dedup step's keys by document, seconds per step."""
    cleaners, dedup = _WORKER["cleaners"], _WORKER["dedup"]
    alive, current = list(range(len(texts))), list(texts)
    lengths = [[len(t)] for t in texts]
    drops = [-1] * len(texts)
    keys: dict[int, dict[int, Any]] = {}
    seconds = []
    for j, cleaner in enumerate(cleaners):
        start = time.perf_counter()
        if j in dedup:
            keys[j] = dict(zip(alive, cleaner.keys(current), strict=True))
            for i, text in zip(alive, current, strict=True):
                lengths[i].append(len(text))
        else:
            results = cleaner.clean(current)
            if len(results) != len(current):
                raise kplug.PluginError(
                    f"cleaner {type(cleaner).__name__} returned {len(results)} results for "
                    f"{len(current)} documents; return one entry (text or None) per document."
                )
            survivors = [(i, r) for i, r in zip(alive, results, strict=True) if r is not None]
            for i, r in zip(alive, results, strict=True):
                if r is None:
                    drops[i] = j
                else:
                    lengths[i].append(len(r))
            alive, current = [i for i, _ in survivors], [r for _, r in survivors]
        seconds.append(time.perf_counter() - start)
    final: list[str | None] = [None] * len(texts)
    for i, text in zip(alive, current, strict=True):
        final[i] = text
    return final, lengths, drops, keys, seconds


def _map_batches(cleaners, dedup, batches, workers):
    """(texts, labels, clean_batch(texts)) in order; at most two batches per worker in
    flight. The labels stay in this process."""
    if workers == 1:
        _start_worker(cleaners, dedup)
        for texts, labels in batches:
            yield texts, labels, clean_batch(texts)
        return
    context = multiprocessing.get_context("spawn")  # TensorFlow may run in this process
    with context.Pool(workers, initializer=_start_worker, initargs=(cleaners, dedup)) as pool:
        pending: deque = deque()
        for texts, labels in batches:
            pending.append((texts, labels, pool.apply_async(clean_batch, (texts,))))
            if len(pending) >= 2 * workers:
                texts, labels, result = pending.popleft()
                yield texts, labels, result.get()
        while pending:
            texts, labels, result = pending.popleft()
            yield texts, labels, result.get()


# ---------------------------------------------------------------------------------------
# Pass 2: split, train the tokenizer, encode into shards
# ---------------------------------------------------------------------------------------


def _split(n: int, config: Any) -> dict[str, np.ndarray]:
    from kplug_text.corpus import split_documents

    return split_documents(n, config)


def _train_tokenizer(cleaned: CleanedText, parts, config, ctx):
    """The tokenizer, trained on the training documents up to the sample size."""
    start = time.perf_counter()
    budget = config.tokenizer_sample_characters
    sample: list[str] = []
    if not config.tokenizer.get("vocabulary_file"):
        for batch in cleaned.batches(parts["train"]):
            for _, text in batch:
                if budget <= 0:
                    break
                sample.append(text)
                budget -= len(text)
            if budget <= 0:
                break
    tokenizer = train_tokenizer(config.tokenizer, sample, ctx)
    count = len(sample)
    del sample
    release_freed_memory()  # the sample and the trainer's tables
    return tokenizer, time.perf_counter() - start, count


def _encode_pass(folder: Path, cleaned: CleanedText, parts, tokenizer):
    start = time.perf_counter()
    membership = np.zeros(cleaned.count, dtype=np.uint8)  # 1 byte per document
    for code, name in enumerate(SPLITS):
        membership[parts[name]] = code
    dtype = token_dtype(tokenizer.vocabulary_size)
    labelled = cleaned.labels is not None
    writers = {name: ShardWriter(folder, name, dtype, _end_id(tokenizer), labelled)
               for name in SPLITS}  # fmt: skip
    train_tokens = train_characters = 0
    progress = Progress("tokenizing", int(cleaned.offsets[-1]))
    for batch in cleaned.batches(characters=ENCODE_CHARACTERS):
        encoded = tokenizer.encode_batch([text for _, text in batch])
        for (i, text), ids in zip(batch, encoded, strict=True):
            split = SPLITS[membership[i]]
            writers[split].add(ids, int(cleaned.labels[i]) if labelled else None)
            if split == "train":
                train_tokens += len(ids)
                train_characters += len(text)
        progress.update(sum(len(t) for _, t in batch), len(batch))
        del encoded
        release_freed_memory()
    progress.finish()
    shards = {name: writer.close() for name, writer in writers.items()}
    total = sum(s["tokens"] - (s["documents"] if _end_id(tokenizer) is not None else 0)
                for s in shards.values())  # fmt: skip
    encoding = {
        "tokens": int(total),
        "train_tokens": train_tokens,
        "train_characters": train_characters,
        "seconds": time.perf_counter() - start,
    }
    return shards, encoding
