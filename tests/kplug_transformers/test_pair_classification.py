"""Sentence pairs end to end: pair data in the text pipeline (`text_files` pair_column,
`vader_pairs`), `[CLS] A [SEP] B [SEP]` packing and the `pair_classification` objective."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from kplug import testing
from kplug.context import RunContext
from kplug.plugins import registry

pytestmark = pytest.mark.xdist_group("transformers")

SIZE = {"layers": 2, "heads": 2, "hidden": 32, "intermediate": 64, "max_length": 64}
WORDS = ["red", "green", "blue", "black", "white", "pink", "gold", "grey"]


def nli_records(n: int = 48) -> list[dict]:
    """Premises repeated over several hypotheses, as in SNLI; label: does the hypothesis
    name the premise's colour. Every fourth record has SNLI's no-gold-label '-'."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        colour, other = rng.choice(WORDS, 2, replace=False)
        same = i % 2 == 0
        label = "-" if i % 4 == 3 else ("entailment" if same else "contradiction")
        hypothesis = f"a {colour if same else other} cat"
        records.append({"premise": f"the cat is {colour}", "hypothesis": hypothesis, "gold": label})
    return records


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_csv(path, records):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return path


def pair_files(path, **extra) -> dict:
    return {"name": "text_files", "path": str(path), "text_column": "premise",
            "pair_column": "hypothesis", "label_column": "gold", "skip_labels": ["-"],
            "tokenizer": {"name": "char"},
            "batch_size": 8, **extra}  # fmt: skip


def load(data: dict, objective: str = "pair_classification"):
    recipe = testing.recipe({"data": data, "model": {"name": "bert"},
                             "objective": {"name": objective}})  # fmt: skip
    return RunContext(recipe, registry()).build(recipe.data)


def recipe_file(tmp_path, data: dict, objective: str = "pair_classification",
                model: str = "bert") -> str:  # fmt: skip
    path = tmp_path / "r.yaml"
    path.write_text(json.dumps({"name": "pairs", "data": data, "model": {"name": model},
                                "objective": {"name": objective}}), encoding="utf-8")  # fmt: skip
    return str(path)


user_error = testing.assert_main_user_error


def test_packing_puts_segment_1_exactly_on_b_and_its_sep():
    from kplug_transformers.pair_classification import (
        PairClassification,
        PairClassificationConfig,
    )

    x = np.empty((2, 2), dtype=object)
    x[0] = [np.array([5]), np.array([7, 8])]
    x[1] = [np.array([5, 6, 7, 8, 9, 10]), np.array([11])]  # too long: A is cut
    objective = PairClassification(PairClassificationConfig(), None)
    objective.length = 8
    packed = objective.pack_split(x, cls=2, sep=3)
    assert packed["token_ids"].tolist() == [[2, 5, 3, 7, 8, 3, 0, 0], [2, 5, 6, 7, 8, 3, 11, 3]]
    assert packed["segment_ids"].tolist() == [[0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1, 1]]
    assert packed["padding_mask"].tolist() == [[1] * 6 + [0, 0], [1] * 8]


def test_vader_pairs_split_tokens_first_balance_labels_and_keep_the_gap():
    from kplug_text.vader_pairs import VaderPairsConfig, vader_pair_corpus
    from kplug_text.vader_sentiment import vader_entries

    ratings = dict(vader_entries())
    config = VaderPairsConfig(tokenizer={"name": "char"}, min_rating_gap=1.5)
    corpus = vader_pair_corpus(config)
    tokens: dict[str, set[str]] = {"train": set(), "validation": set(), "test": set()}
    for a, b, label, split in zip(corpus.documents, corpus.pairs, corpus.labels,
                                  corpus.splits, strict=True):  # fmt: skip
        assert abs(ratings[a] - ratings[b]) >= 1.5 - 1e-9
        assert label == ("first" if ratings[a] > ratings[b] else "second")
        tokens[split] |= {a, b}
    assert not tokens["train"] & tokens["test"] and not tokens["train"] & tokens["validation"]
    assert not tokens["validation"] & tokens["test"]
    for split in tokens:
        labels = [lab for lab, s in zip(corpus.labels, corpus.splits, strict=True) if s == split]
        assert abs(labels.count("first") - labels.count("second")) <= 1
    pairs = {frozenset(p) for p in zip(corpus.documents, corpus.pairs, strict=True)}
    assert len(pairs) == len(corpus.documents) > 1.8 * len(ratings)
    # The same path as every text dataset: the splits stay as vader_pairs made them.
    data = load({"name": "vader_pairs", "tokenizer": {"name": "char"}, "min_rating_gap": 1.5})
    assert data.spec.extras["text_form"] == "pairs" and data.spec.class_names == ["first", "second"]
    assert len(data.test[0]) == corpus.splits.count("test")
    decode = data.spec.extras["tokenizer"].decode
    test_tokens = {decode(ids) for ids in data.test[0].ravel()}
    assert test_tokens == tokens["test"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_text_files_reads_pairs_and_skips_labels(tmp_path, suffix):
    records = nli_records()
    path = (write_jsonl if suffix == ".jsonl" else write_csv)(tmp_path / f"nli{suffix}", records)
    data = load(pair_files(path, validation_fraction=0, test_fraction=0))
    x, y = data.train
    assert x.shape == (36, 2) and data.spec.extras["text_form"] == "pairs"
    assert data.report["skipped_labels"] == {"-": 12}
    assert data.spec.class_names == ["contradiction", "entailment"]
    decode = data.spec.extras["tokenizer"].decode
    kept = [r for r in records if r["gold"] != "-"]
    assert [decode(a) for a in x[:, 0]] == [r["premise"] for r in kept]
    assert [decode(b) for b in x[:, 1]] == [r["hypothesis"] for r in kept]
    assert y.tolist() == [int(r["gold"] == "entailment") for r in kept]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_record_without_the_pair_field_is_a_user_error(tmp_path, capsys, suffix):
    records = nli_records(6)
    records[4] = {"premise": "the cat is red", "gold": "entailment"}
    if suffix == ".jsonl":
        path = write_jsonl(tmp_path / "nli.jsonl", records)
    else:  # a CSV row with an empty hypothesis is text; the missing column is the error
        path = write_csv(tmp_path / "nli.csv", [{"premise": r["premise"], "gold": r["gold"]}
                                                for r in records])  # fmt: skip
    line = 5 if suffix == ".jsonl" else 2
    user_error(capsys, ["data", recipe_file(tmp_path, pair_files(path))],
               f"nli{suffix}:{line}: no pair_column 'hypothesis'", "data.pair_column")  # fmt: skip


@pytest.mark.parametrize("dedup", ["exact_dedup", "minhash_dedup"])
def test_dedup_on_pair_data_is_refused(tmp_path, capsys, dedup):
    path = write_jsonl(tmp_path / "nli.jsonl", nli_records())
    user_error(capsys, ["validate", recipe_file(tmp_path, pair_files(path, clean=[dedup]))],
               f"{dedup} cannot run on sentence-pair data", "premise")  # fmt: skip
    vader = {"name": "vader_pairs", "tokenizer": {"name": "char"}, "clean": [dedup]}
    user_error(capsys, ["validate", recipe_file(tmp_path, vader)], "several hypotheses")


def test_pair_data_without_a_tokenizer_is_refused(tmp_path, capsys):
    path = write_jsonl(tmp_path / "nli.jsonl", nli_records())
    user_error(capsys, ["validate", recipe_file(tmp_path, pair_files(path, tokenizer=None))],
               "sentence-pair data needs data.tokenizer")  # fmt: skip


@pytest.mark.parametrize(("objective", "model"), [("text_classification", "bert"),
                                                  ("causal_lm", "gpt2")])  # fmt: skip
def test_pair_data_for_a_one_text_objective_points_to_pair_classification(
    tmp_path, capsys, objective, model
):
    path = write_jsonl(tmp_path / "nli.jsonl", nli_records())
    user_error(capsys, ["data", recipe_file(tmp_path, pair_files(path), objective, model)],
               f"{objective} reads one text per document", "pair_classification")  # fmt: skip


def test_one_text_data_for_pair_classification_is_refused(tmp_path, capsys):
    data = {"name": "vader_sentiment", "tokenizer": {"name": "char"}, "limit": 50}
    user_error(capsys, ["data", recipe_file(tmp_path, data)],
               "pair_classification needs sentence pairs", "text_classification")  # fmt: skip


def test_a_tiny_bert_learns_pair_classification(tmp_path):
    path = write_jsonl(tmp_path / "nli.jsonl", nli_records(160))
    result = testing.smoke_run(
        {
            "name": "tiny-pairs",
            "data": pair_files(path, tokenizer={"name": "wordpiece", "vocab_size": 48}),
            "model": {"name": "bert", **SIZE, "dropout": 0.0},
            "objective": {"name": "pair_classification", "classifier_dropout": 0.0},
            "optimizer": {"name": "adam", "learning_rate": 3.0e-3},
            "train": {"jit_compile": False, "epochs": 10},
        },  # fmt: skip
        tmp_path / "runs",
        smoke=False,
    )
    with (result.directory / "metrics.csv").open() as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) == 10 and losses[-1] < 0.7 * losses[0], losses
    assert np.isfinite(result.metrics["test"]["loss"])
    assert 0.0 <= result.metrics["test"]["accuracy"] <= 1.0
    report = result.directory.read_json("data_report.json")
    assert report["pair_classification"]["train"] == report["examples"]["train"] == 96
