"""Prediction inputs of every text dataset (hook `prediction_inputs`): any dataset whose
config is a `TextDataConfig` (text_files, pydoc_corpus, web_crawl, vader_sentiment,
vader_pairs and third-party ones built on `text_data`).

Inputs: `--text` (and `--pair` for sentence pairs), or files: .txt (one input per
non-empty line), .csv and .jsonl (the dataset's `text_column` / `pair_column`, else
`text` / `pair`), or a folder of them. Each text goes through the run's cleaning steps
(transformations only: a filter's or deduplication's verdict on one input is ignored,
the input kept as it was), the run's saved tokenizer and its sequence length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import kplug
from kplug_text.corpus import TextDataConfig, pad, ragged
from kplug_text.text_files import SUFFIXES, _read_text, _records
from kplug_text.tokenizer_files import load_tokenizer


def read_prediction_inputs(
    config: Any,
    paths: list[Path],
    texts: list[str],
    pairs: list[str],
    run_dir: Path,
    inference: dict[str, Any],
    ctx: kplug.RunContext,
) -> kplug.Data | None:
    if not isinstance(config, TextDataConfig):
        return None
    form = inference["data"]["text_form"]
    firsts, seconds = list(texts), list(pairs)
    for file in _files(paths):
        a, b = _read_inputs(file, config, form == "pairs")
        firsts.extend(a)
        seconds.extend(b)
    if form == "pairs" and len(seconds) != len(firsts):
        raise kplug.DataError(
            "this run's model classifies sentence pairs: give each --text a --pair, or a "
            ".csv/.jsonl file with a second-text column (data.pair_column, else 'pair')."
        )
    if form != "pairs" and seconds:
        raise kplug.DataError(
            "this run's model reads one text per example; --pair applies "
            "only to sentence-pair models."
        )
    names = [
        a if form != "pairs" else f"{a} | {b}"
        for a, b in zip(firsts, seconds or firsts, strict=True)
    ]
    sides = [_clean(firsts, config, ctx)] + ([_clean(seconds, config, ctx)] if seconds else [])
    spec = kplug.DataSpec(
        input_shape=tuple(inference["data"]["input_shape"] or ()),
        num_classes=len(inference["class_names"]) if inference.get("class_names") else None,
        class_names=inference.get("class_names"),
        vocabulary_size=inference["data"].get("vocabulary_size"),
        input_dtype=inference["data"]["input_dtype"],
        extras={"text_form": form},
    )
    if form == "strings":
        x = np.empty(len(sides[0]), dtype=object)
        x[:] = sides[0]
    else:
        tokenizer = load_tokenizer(run_dir)
        spec.extras["tokenizer"] = tokenizer
        encoded = [ragged(tokenizer.encode_batch(side)) for side in sides]
        x = _encoded(encoded, form, spec.input_shape, config.sequence_length)
    return kplug.Data(train=(x, None), spec=spec, report={"inputs": names})


def _files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
            if not found:
                raise kplug.DataError(f"{path}: no .txt/.csv/.jsonl files in this folder.")
            files.extend(found)
        elif path.suffix in SUFFIXES:
            files.append(path)
        else:
            raise kplug.DataError(
                f"{path}: this run's model reads text, not {path.suffix or 'this'} files; "
                'give .txt (one input per line), .csv or .jsonl files, or --text "...".'
            )
    return files


def _read_inputs(file: Path, config: Any, paired: bool) -> tuple[list[str], list[str]]:
    text = _read_text(file, getattr(config, "encoding", "utf-8"))
    if not text.strip():
        raise kplug.DataError(f"{file} is empty; give at least one input text.")
    if file.suffix == ".txt":
        if paired:
            raise kplug.DataError(
                f"{file}: a sentence-pair model needs two texts per input; "
                "give a .csv or .jsonl file with two text columns."
            )
        return [line for line in text.splitlines() if line.strip()], []
    column = getattr(config, "text_column", "text")
    pair_column = getattr(config, "pair_column", None) or "pair"
    firsts, seconds = [], []
    for where, record in _records(file, text):
        if column not in record:
            raise kplug.DataError(
                f"{where}: no {column!r} column (the input text); its "
                f"columns: {', '.join(map(str, record))}."
            )
        firsts.append(str(record[column]))
        if paired:
            if pair_column not in record:
                raise kplug.DataError(
                    f"{where}: no {pair_column!r} column (the second text of the pair)."
                )
            seconds.append(str(record[pair_column]))
    if not firsts:
        raise kplug.DataError(f"{file} holds no records; give at least one input text.")
    return firsts, seconds


def _clean(texts: list[str], config: Any, ctx: kplug.RunContext) -> list[str]:
    current = list(texts)
    for entry in config.clean:
        results = ctx.build_nested("cleaner", entry).clean(current)
        current = [old if new is None else new for old, new in zip(current, results, strict=True)]
    return current


def _encoded(encoded: list[np.ndarray], form: str, shape: tuple, length: int | None):
    if form == "pairs":
        x = np.empty((len(encoded[0]), 2), dtype=object)
        for column, side in enumerate(encoded):
            x[:, column] = [ids[:length] for ids in side]
        return x
    if form == "ragged":
        return encoded[0]
    return pad(encoded[0], shape[0])
