"""`Datastore`: a kNN-LM's memory (Khandelwal et al., 2020): the model's representation of
every training context (the key) and the token that followed it (the value), in a faiss
index kept in the run directory (`knn/`), with the tokenizer it is valid for.

Files: `knn/keys.faiss` (the index, `faiss.write_index`), `knn/values.npy` (int32 next
tokens, in index order) and `knn/datastore.json` (entries, dimension, index kind, build
seconds, bytes, and the tokenizer's name and SHA-256 of its saved files).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import kplug

FOLDER = "knn"
INDEX, VALUES, METADATA = "keys.faiss", "values.npy", "datastore.json"


def tokenizer_fingerprint(run_dir: Path) -> dict[str, str]:
    """The saved tokenizer of a run (`tokenizer/`): its name and a SHA-256 of its files."""
    folder = Path(run_dir) / "tokenizer"
    metadata = folder / "kplug_tokenizer.json"
    if not metadata.is_file():
        raise kplug.DataError(
            f"{run_dir} has no saved tokenizer (tokenizer/kplug_tokenizer.json); a kNN "
            "datastore maps contexts to token ids, so the data section needs a tokenizer."
        )
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    name = json.loads(metadata.read_text(encoding="utf-8"))["name"]
    return {"name": name, "sha256": digest.hexdigest()}


@dataclass
class Datastore:
    """A faiss index of keys and the next token of each.

    Args:
        index: a `faiss.Index` holding the keys (float32, one row per context).
        values: the next token of each key, int32, in index order.
        metadata: what `datastore.json` holds.
    """

    index: Any
    values: np.ndarray
    metadata: dict[str, Any]

    @classmethod
    def build(cls, keys: np.ndarray, values: np.ndarray, *, tokenizer: dict[str, str],
              kind: str = "flat", nlist: int = 256, nprobe: int = 8) -> Datastore:  # fmt: skip
        """An exact L2 index (`flat`) or an inverted-file one (`ivf`: `nlist` k-means
        cells, `nprobe` searched) over `keys`."""
        import faiss

        start = time.perf_counter()
        keys = np.ascontiguousarray(keys, dtype=np.float32)
        dimension = keys.shape[1]
        if kind == "ivf":
            cells = max(1, min(nlist, len(keys) // 39))  # faiss wants 39 points per cell
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dimension), dimension, cells)
            index.train(keys)
            index.nprobe = min(nprobe, cells)
        else:
            index = faiss.IndexFlatL2(dimension)
        index.add(keys)
        metadata = {
            "entries": int(index.ntotal),
            "dimension": int(dimension),
            "index": kind,
            "build_seconds": round(time.perf_counter() - start, 3),
            "tokenizer": tokenizer,
        }
        return cls(index, np.asarray(values, dtype=np.int32), metadata)

    def save(self, directory: kplug.RunContext | Any) -> Path:
        """Write the three files into `directory/knn/` (a `RunDirectory`), each atomically."""
        import faiss

        folder = directory.path / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        temporary = directory.temporary_path(f"{FOLDER}/{INDEX}")
        faiss.write_index(self.index, str(temporary))
        directory.commit(temporary, f"{FOLDER}/{INDEX}")
        temporary = directory.temporary_path(f"{FOLDER}/{VALUES}")
        with temporary.open("wb") as file:
            np.save(file, self.values)
        directory.commit(temporary, f"{FOLDER}/{VALUES}")
        self.metadata["bytes"] = sum((folder / n).stat().st_size for n in (INDEX, VALUES))
        directory.write_json(f"{FOLDER}/{METADATA}", self.metadata)
        return folder

    @classmethod
    def load(cls, folder: Path) -> Datastore:
        import faiss

        metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
        index = faiss.read_index(str(folder / INDEX))
        return cls(index, np.load(folder / VALUES), metadata)

    def next_token_probability(
        self, queries: np.ndarray, targets: np.ndarray, k: int, temperature: float
    ) -> np.ndarray:
        """p_kNN(target | query) for each query: a softmax over the `k` nearest keys'
        negative squared L2 distances / `temperature`, summed over the keys whose value is
        the target."""
        return knn_probability(*self.neighbours(queries, targets, k), temperature)

    def neighbours(self, queries: np.ndarray, targets: np.ndarray,
                   k: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The `k` nearest keys of each query, nearest first: their squared L2 distances
        (inf where an IVF search found fewer than k) and whether each one's value is the
        query's target. Their first k' columns are the k' nearest, so one search serves
        every smaller `k`."""
        distances, found = self.index.search(np.ascontiguousarray(queries, np.float32), k)
        missing = found < 0
        distances = np.where(missing, np.inf, distances)
        hits = (self.values[np.where(missing, 0, found)] == targets[:, None]) & ~missing
        return distances, hits


def knn_probability(distances: np.ndarray, hits: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of `-distances / temperature` per row, summed where `hits`: p_kNN of the
    target from its neighbours (`Datastore.neighbours`)."""
    logits = -distances / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=1, keepdims=True)
    return (weights * hits).sum(axis=1)


def find_datastore(value: str) -> Path:
    """The `knn/` folder a `datastore:` names: a run directory, runs/<name> (its newest
    completed run) or the `knn/` folder itself."""
    path = Path(value).expanduser()
    candidates = [path, path / FOLDER]
    if path.is_dir() and not (path / FOLDER).is_dir():
        newest = kplug.latest_completed_run(path)
        if newest is not None:
            candidates.append(newest / FOLDER)
    for folder in candidates:
        if (folder / METADATA).is_file() and (folder / INDEX).is_file():
            return folder
    raise kplug.DataError(
        f"objective.datastore: {value!r} holds no kNN datastore ({FOLDER}/{METADATA} and "
        f"{FOLDER}/{INDEX}); give the directory of a completed knn_lm run, or null to build "
        "one from this run's training data."
    )
