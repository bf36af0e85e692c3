"""Token shards: the on-disk form of a prepared text dataset, read by memory mapping.

Each split is one flat token file (`<split>.tokens`, little-endian uint16 when the
vocabulary has fewer than 65,536 tokens, else uint32): the documents' token ids one after
another, each followed by the tokenizer's end-of-text id when it has one. Beside it,
`<split>.offsets.npy` holds the int64 start of every document (and the end of the last),
labelled text `<split>.labels.npy` (the int32 class of every document, `class_names` in
the index), and `index.json` the dtype, counts and a BLAKE2b digest of every file. Random access is
a slice of a `numpy.memmap`, so any backend reads it (through `tf.data` here, a PyDataset
or Grain elsewhere) and a training position is just a window index.
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from pathlib import Path
from typing import Any

import numpy as np

import kplug

INDEX = "index.json"
FORMAT = 1
CHUNK = 1 << 24
FLUSH_TOKENS = 1 << 20  # written this many at a time: 2 MB of uint16 in memory, not 32 MB


def token_dtype(vocabulary_size: int) -> np.dtype:
    return np.dtype("<u2") if vocabulary_size < 65536 else np.dtype("<u4")


class ShardWriter:
    """Appends documents' token ids to one split's token file, hashing as it writes; only
    the offsets (8 bytes per document) stay in memory.

    Args:
        folder: the (temporary) prepared-dataset folder.
        split: `train`, `validation` or `test`.
        dtype: from `token_dtype`.
        end_id: appended after each document, or None.
    """

    def __init__(self, folder: Path, split: str, dtype: np.dtype, end_id: int | None,
                 labelled: bool = False):  # fmt: skip
        self.path = Path(folder) / f"{split}.tokens"
        self.split, self.dtype, self.end_id = split, dtype, end_id
        self.handle = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self.digest = hashlib.blake2b(digest_size=16)
        self.offsets = array("q", [0])  # 8 bytes per document
        self.labels = array("i") if labelled else None  # 4 more for labelled text
        self.pending: list[np.ndarray] = []
        self.pending_tokens = 0

    def add(self, ids: list[int] | np.ndarray, label: int | None = None) -> None:
        if self.labels is not None:
            self.labels.append(label)
        array = np.asarray(ids, dtype=self.dtype)
        if self.end_id is not None:
            array = np.append(array, np.array(self.end_id, self.dtype))
        self.pending.append(array)
        self.pending_tokens += len(array)
        self.offsets.append(self.offsets[-1] + len(array))
        if self.pending_tokens >= FLUSH_TOKENS:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        data = np.concatenate(self.pending)  # written and hashed as a buffer: no copy
        self.handle.write(data)
        self.digest.update(data)
        self.pending, self.pending_tokens = [], 0

    def close(self) -> dict[str, Any]:
        """Flush, fsync, write the offsets; returns this split's index entry."""
        self._flush()
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        offsets_path = self.path.with_name(f"{self.split}.offsets.npy")
        offsets = np.asarray(self.offsets, dtype=np.int64)
        _save_durably(offsets_path, offsets)
        entry = {
            "tokens_file": self.path.name,
            "offsets_file": offsets_path.name,
            "documents": len(offsets) - 1,
            "tokens": int(offsets[-1]),
            "blake2b": {self.path.name: self.digest.hexdigest(),
                        offsets_path.name: file_digest(offsets_path)},
        }  # fmt: skip
        if self.labels is not None:
            labels_path = self.path.with_name(f"{self.split}.labels.npy")
            _save_durably(labels_path, np.asarray(self.labels, dtype=np.int32))
            entry["labels_file"] = labels_path.name
            entry["blake2b"][labels_path.name] = file_digest(labels_path)
        return entry


def _save_durably(path: Path, values: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, values)
        handle.flush()
        os.fsync(handle.fileno())


def file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class TokenDocuments:
    """The documents of one split, memory-mapped: behaves as the 1-D object array of
    int32 token arrays that in-memory text data holds (`len`, iteration, an index, a
    slice, an index array), without reading the file.

    Args:
        tokens: the split's token memmap.
        offsets: int64 start of each document and end of the last (`n + 1` values).
        end_id: the end-of-text id each document ends with in `tokens`, or None.
    """

    ndim = 1
    dtype = np.dtype(object)

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, end_id: int | None):
        self.tokens, self.offsets, self.end_id = tokens, offsets, end_id

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    def document(self, i: int) -> np.ndarray:
        end = self.offsets[i + 1] - (self.end_id is not None)
        return np.asarray(self.tokens[self.offsets[i] : end], dtype=np.int32)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            return self.document(range(len(self))[index])
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                return TokenDocuments(self.tokens, self.offsets[start : max(start, stop) + 1],
                                      self.end_id)  # fmt: skip
            index = np.arange(start, stop, step)
        out = np.empty(len(index), dtype=object)
        out[:] = [self.document(int(i)) for i in index]
        return out

    def __iter__(self):
        return (self.document(i) for i in range(len(self)))

    def stream(self) -> np.ndarray:
        """The documents' tokens as one memmap slice, each followed by `end_id`."""
        return self.tokens[self.offsets[0] : self.offsets[-1]]


class PaddedDocuments:
    """Labelled documents of one split as the padded 2-D int32 array in-memory text data
    holds (each document cut to `length` and padded with 0), read from the memory-mapped
    shard: `gather` (and an index, a slice, an index array) builds only the rows asked
    for; `np.asarray` makes the whole array, for objectives that want it in memory.

    Args:
        documents: the split's `TokenDocuments`.
        length: the padded length (`data.sequence_length`, or the longest training document).
    """

    ndim = 2
    dtype = np.dtype(np.int32)

    def __init__(self, documents: TokenDocuments, length: int):
        self.documents, self.length = documents, length

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.length)

    def gather(self, indices: np.ndarray) -> np.ndarray:
        out = np.zeros((len(indices), self.length), dtype=np.int32)
        for row, i in enumerate(np.asarray(indices, dtype=np.int64)):
            ids = self.documents.document(int(i))[: self.length]
            out[row, : len(ids)] = ids
        return out

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self.gather([range(len(self))[index]])[0]
        return self.gather(np.arange(len(self))[index])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.gather(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)


class IndexedExamples:
    """Examples read by index, a batch at a time: `gather(indices)` gives the `(x, y)` of
    those examples, `take(n)` the first `n`, `output_signature` their shapes and dtypes;
    subclasses set `count`. The input pipeline (kplug_distribute's `make_dataset`) treats
    such an object like NumPy arrays: it shuffles example indices, seeded per epoch, and
    gathers a batch at a time, so the batches, and a checkpoint's position in them, are
    those of the same examples held in memory."""

    count: int

    def __len__(self) -> int:
        return self.count

    def cardinality(self) -> int:
        return self.count


class TokenWindows(IndexedExamples):
    """A streamed split of windows over a token stream: window `i` is `stream[i * stride :
    i * stride + length + 1]`, giving `x = window[:-1]` and `y = window[1:]`.

    Args:
        stream: int token ids (a memmap slice).
        length: tokens per example (`x` and `y` each).
        stride: tokens between window starts.
    """

    def __init__(self, stream: np.ndarray, length: int, stride: int, count: int | None = None):
        self.stream, self.length, self.stride = stream, length, stride
        fits = (len(stream) - (length + 1)) // stride + 1 if len(stream) > length else 0
        self.count = fits if count is None else min(count, fits)
        self.output_signature = (((length,), "int32"), ((length,), "int32"))

    def take(self, n: int) -> TokenWindows:
        return TokenWindows(self.stream, self.length, self.stride, min(n, self.count))

    def gather(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = np.asarray(indices, dtype=np.int64) * self.stride
        windows = self.stream[starts[:, None] + np.arange(self.length + 1)].astype(np.int32)
        return windows[:, :-1], windows[:, 1:]

    def target_counts(self, vocabulary_size: int, windows: int | None = None) -> np.ndarray:
        """Counts of each id among the targets of the first `windows` windows."""
        n = self.count if windows is None else min(windows, self.count)
        counts = np.zeros(vocabulary_size, dtype=np.int64)
        step = max(1, CHUNK // (self.length + 1))
        for first in range(0, n, step):
            _, y = self.gather(np.arange(first, min(n, first + step)))
            counts += np.bincount(y.ravel(), minlength=vocabulary_size)[:vocabulary_size]
        return counts


def open_splits(folder: Path, *, verify: bool = True) -> dict[str, TokenDocuments | None]:
    """Each split's `TokenDocuments` (None for an empty split) from a prepared folder.

    Raises:
        kplug.DataError: naming the file, when one is missing, truncated or its digest
            differs from the index (a damaged cache: `kplug data --clear` and rerun).
    """
    index = read_index(folder)
    dtype = np.dtype(index["dtype"])
    out: dict[str, TokenDocuments | None] = {}
    for split, entry in index["splits"].items():
        tokens_path = folder / entry["tokens_file"]
        offsets_path = folder / entry["offsets_file"]
        for path in (tokens_path, offsets_path):
            if not path.is_file():
                raise _damaged(path, "is missing")
        if tokens_path.stat().st_size != entry["tokens"] * dtype.itemsize:
            raise _damaged(tokens_path, f"holds {tokens_path.stat().st_size} bytes, not the "
                           f"{entry['tokens'] * dtype.itemsize} of its index")  # fmt: skip
        if verify:
            for path in (tokens_path, offsets_path):
                if file_digest(path) != entry["blake2b"][path.name]:
                    raise _damaged(path, "does not match the digest in its index")
        if entry["documents"] == 0:
            out[split] = None
            continue
        tokens = np.memmap(tokens_path, dtype=dtype, mode="r") if entry["tokens"] else None
        offsets = np.load(offsets_path)
        out[split] = TokenDocuments(tokens, offsets, index["end_id"])
    return out


def open_labels(folder: Path, *, verify: bool = True) -> dict[str, np.ndarray | None]:
    """Each split's int32 class of every document (None for an empty split) from a prepared
    folder of labelled text.

    Raises:
        kplug.DataError: naming the file, when one is missing, of the wrong size or its
            digest differs from the index.
    """
    index = read_index(folder)
    out: dict[str, np.ndarray | None] = {}
    for split, entry in index["splits"].items():
        path = folder / entry["labels_file"]
        if not path.is_file():
            raise _damaged(path, "is missing")
        if verify and file_digest(path) != entry["blake2b"][path.name]:
            raise _damaged(path, "does not match the digest in its index")
        try:
            labels = np.load(path)
        except ValueError as error:
            raise _damaged(path, f"cannot be read ({error})") from None
        if labels.shape != (entry["documents"],):
            raise _damaged(path, f"holds {labels.size} labels for {entry['documents']} documents")
        out[split] = labels if entry["documents"] else None
    return out


def read_index(folder: Path) -> dict[str, Any]:
    path = Path(folder) / INDEX
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise _damaged(path, f"cannot be read ({error})") from None
    if index.get("format") != FORMAT:
        raise _damaged(path, f"has format {index.get('format')!r}, not {FORMAT}")
    return index


def _damaged(path: Path, problem: str) -> kplug.DataError:
    return kplug.DataError(
        f"prepared data file {path} {problem}: the data cache is damaged. Remove it with "
        f"`kplug data --clear` (or delete {path.parent}) and run again to prepare it anew."
    )
