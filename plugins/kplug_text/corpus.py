"""The shared path of every text dataset: clean, split by document, tokenize, encode.

A dataset plugin reads its documents (and labels) into a `Corpus` and returns
`text_data(corpus, config, ctx)` with a config that subclasses `TextDataConfig`. The
splits' `x` is, per document:
- no tokenizer: the cleaned text (a 1-D object array of `str`, a `tf.string` tensor once
  batched), for models that bring their own preprocessing;
- a tokenizer and no `sequence_length` and no labels: an int32 array of token ids of any
  length (a 1-D object array of arrays), which objectives such as `causal_lm` reshape;
- a tokenizer with `sequence_length` or labels: a 2-D int32 array, documents truncated and
  padded with id 0 (classification).
`y` is the class index of each document, or None for unlabelled text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, PositiveInt, model_validator

import kplug
from kplug_text.pipeline import clean_documents
from kplug_text.tokenizer_files import FOLDER, save_tokenizer, train_tokenizer

SPLITS = ("train", "validation", "test")


@dataclass
class Corpus:
    """Raw documents, optional labels (one per document) and where they came from."""

    documents: list[str]
    labels: list[str] | None = None
    source: str = ""


class TextDataConfig(kplug.Config):
    """Options every text dataset has."""

    clean: list[dict[str, Any]] = kplug.component_list(
        "cleaner", description="cleaning steps in order, e.g. [{name: strip_html}, ...]"
    )
    tokenizer: dict[str, Any] | None = kplug.component_ref(
        "tokenizer",
        description="trained on the cleaned training documents and saved in the run "
        "directory, e.g. {name: wordpiece, vocab_size: 4000}; null: x holds the texts",
    )
    sequence_length: PositiveInt | None = Field(
        None,
        description="truncate and pad every document to this many tokens; null: "
        "variable-length documents (padded to the longest if the data has labels)",
    )
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="documents held out")
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="documents held out")
    split_seed: int = Field(0, description="seed of the by-document split")

    @model_validator(mode="after")
    def _leaves_training_documents(self) -> TextDataConfig:
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ValueError("validation_fraction + test_fraction must leave training documents")
        return self


def text_data(corpus: Corpus, config: TextDataConfig, ctx: kplug.RunContext) -> kplug.Data:
    """Clean, split, tokenize and encode a corpus into a `kplug.Data` (see module doc)."""
    if not corpus.documents:
        raise kplug.DataError(
            f"no documents in {corpus.source or 'the corpus'} (its files are empty or hold "
            "no records); give data.path files with text."
        )
    cleaned = clean_documents(corpus.documents, config.clean, ctx)
    texts = cleaned.texts
    labels = [corpus.labels[i] for i in cleaned.kept] if corpus.labels is not None else None
    parts = split_documents(len(texts), config)
    report: dict[str, Any] = {
        "source": corpus.source,
        "documents": {
            "input": len(corpus.documents),
            "after_cleaning": len(texts),
            **{s: len(parts[s]) for s in SPLITS},
        },  # fmt: skip
        "cleaning": cleaned.report,
    }
    class_names = sorted(set(labels)) if labels is not None else None
    spec = kplug.DataSpec(
        num_classes=len(class_names) if class_names else None, class_names=class_names
    )
    y = _label_ids(labels, class_names)
    if config.tokenizer is None:
        x = np.empty(len(texts), dtype=object)
        x[:] = texts
        spec.input_shape, spec.input_dtype = (), "string"
    else:
        tokenizer, x, report["tokenizer"] = _tokenize(texts, parts["train"], config, ctx)
        padded = config.sequence_length is not None or labels is not None
        if padded:
            length = config.sequence_length or max(len(x[i]) for i in parts["train"])
            x = pad(x, length)
        spec.input_shape = (x.shape[1],) if padded else (None,)
        spec.input_dtype = "int32"
        spec.vocabulary_size = tokenizer.vocabulary_size
        spec.extras["tokenizer"] = tokenizer
    spec.extras["text_form"] = (
        "strings" if config.tokenizer is None else "padded" if x.ndim == 2 else "ragged"
    )
    splits = {s: (x[idx], None if y is None else y[idx]) if len(idx) else None
              for s, idx in parts.items()}  # fmt: skip
    return kplug.Data(**splits, spec=spec, report=report)


def split_documents(n: int, config: TextDataConfig) -> dict[str, np.ndarray]:
    """Seeded by-document split into train / validation / test indices (each in corpus
    order); a non-zero fraction gets at least one document when there are three or more."""
    order = np.random.default_rng(config.split_seed).permutation(n)
    sizes = []
    for fraction in (config.validation_fraction, config.test_fraction):
        size = int(round(n * fraction))
        sizes.append(max(size, 1) if fraction and n >= 3 else size)
    validation, test = order[: sizes[0]], order[sizes[0] : sum(sizes)]
    train = order[sum(sizes) :]
    return {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test)}


def pad(documents: np.ndarray, length: int) -> np.ndarray:
    """Token arrays truncated and padded with 0 to `length`: a 2-D int32 array."""
    out = np.zeros((len(documents), length), dtype=np.int32)
    for row, ids in enumerate(documents):
        ids = ids[:length]
        out[row, : len(ids)] = ids
    return out


def ragged(rows: list[list[int]]) -> np.ndarray:
    """A 1-D object array of int32 arrays (NumPy would make equal-length rows 2-D)."""
    out = np.empty(len(rows), dtype=object)
    out[:] = [np.asarray(r, dtype=np.int32) for r in rows]
    return out


def _label_ids(labels: list[str] | None, class_names: list[str] | None) -> np.ndarray | None:
    if labels is None:
        return None
    index = {name: i for i, name in enumerate(class_names)}
    return np.array([index[label] for label in labels], dtype=np.int32)


def _tokenize(texts: list[str], train: np.ndarray, config: TextDataConfig, ctx):
    start = time.perf_counter()
    entry = config.tokenizer
    train_texts = [texts[i] for i in train]
    tokenizer = train_tokenizer(entry, train_texts, ctx)
    trained = time.perf_counter()
    x = ragged(tokenizer.encode_batch(texts))
    if ctx.directory is not None:
        save_tokenizer(tokenizer, entry, ctx.directory / FOLDER)
    train_tokens = sum(len(x[i]) for i in train)
    report = {
        "name": entry["name"],
        "vocabulary_size": tokenizer.vocabulary_size,
        "source": entry.get("vocabulary_file") or f"trained on {len(train_texts)} documents",
        "tokens": int(sum(map(len, x))),
        "characters_per_token": round(sum(map(len, train_texts)) / max(train_tokens, 1), 3),
        "train_seconds": round(trained - start, 3),
        "encode_seconds": round(time.perf_counter() - trained, 3),
    }
    return tokenizer, x, report
