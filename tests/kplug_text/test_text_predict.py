"""`kplug predict` / `kplug evaluate` on text runs: a classifier of CSV reviews (class
names in the output, the run's tokenizer and length) and a character LSTM language model
(generation); bad inputs; both models load in plain Keras."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from kplug import load_recipe, testing
from kplug.cli import main
from kplug.runner import run

REVIEWS = [
    ("a wonderful film, the actors are great and the story is moving", "pos"),
    ("boring plot and terrible acting, I left early", "neg"),
    ("great music, great fun, I loved every minute", "pos"),
    ("the worst film this year, dull and far too long", "neg"),
    ("dull", "neg"),
    ("great", "pos"),
]


def write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def reviews_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reviews")
    path = write_csv(root / "reviews.csv", REVIEWS * 6)
    recipe = testing.recipe({
        "name": "reviews",
        "data": {"name": "text_files", "path": str(path), "label_column": "label",
                 "batch_size": 8, "tokenizer": {"name": "char"}},
        "model": {"name": "rnn", "units": 8, "embedding_dim": 8},
        "objective": {"name": "classification"},
        "train": {"epochs": 2},
    })  # fmt: skip
    return run(recipe, runs_root=root, argv=["test"])


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    recipe = load_recipe("recipes/lstm_pydoc.yaml", ["model.units=8", "model.embedding_dim=8",
                                                     "objective.sequence_length=20"])  # fmt: skip
    return run(recipe, runs_root=root, smoke=True, argv=["test"])


def test_predict_a_csv_gives_class_names_and_agrees_with_evaluate(reviews_run, tmp_path,
                                                                  capsys):  # fmt: skip
    new = write_csv(tmp_path / "new.csv", REVIEWS)
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(reviews_run.directory), str(new), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["input"] for r in rows] == [text for text, _ in REVIEWS]
    assert {r["class"] for r in rows} <= {"neg", "pos"}
    assert all(r["top_k"].count(":") == 2 for r in rows)  # both classes, with probabilities
    accuracy = np.mean([r["class"] == label for r, (_, label) in zip(rows, REVIEWS, strict=True)])
    assert main(["evaluate", str(reviews_run.directory), f"data.path={new}", "--split", "all"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["examples"] == len(REVIEWS)
    assert record["metrics"]["accuracy"] == pytest.approx(accuracy)


def test_predict_text_and_jsonl_give_the_same_probabilities(reviews_run, tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": "great fun"}) + "\n")
    assert main(["predict", str(reviews_run.directory), "--text", "great fun"]) == 0
    from_text = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert main(["predict", str(reviews_run.directory), str(tmp_path / "in.jsonl")]) == 0
    from_file = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert from_text == from_file and from_text[0]["input"] == "great fun"


def test_text_bad_inputs_are_user_errors(reviews_run, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    directory = str(reviews_run.directory)
    cases = [
        (["predict", directory, str(tmp_path / "empty.txt")], "empty.txt is empty"),
        (["predict", directory, str(tmp_path / "image.png")], "reads text, not .png"),
        (["predict", directory, "--text", "a", "--pair", "b"], "only to sentence-pair"),
        (["predict", directory], "needs an INPUT"),
    ]
    for args, fragment in cases:
        testing.assert_main_user_error(capsys, args, fragment)


def test_predict_on_a_language_model_generates_greedily(lm_run, tmp_path):
    from kplug_sequence.generate import generate
    from kplug_text.tokenizer_files import load_tokenizer

    from kplug.training.models import load_model

    (tmp_path / "prompts.txt").write_text("The for statement\nClasses\n")
    out = tmp_path / "generated.jsonl"
    assert main(["predict", str(lm_run.directory), str(tmp_path / "prompts.txt"),
                 "--max-tokens", "12", "--out", str(out)]) == 0  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in rows] == ["The for statement", "Classes"]
    model = load_model(lm_run.directory / "model.keras", compile=False)
    tokenizer = load_tokenizer(lm_run.directory)
    expected = generate(model, tokenizer, "Classes", max_tokens=12, temperature=0,
                        sequence_length=20, stop_at_end=True)  # fmt: skip
    assert rows[1]["generated"] == expected and len(expected) > 0


def test_text_models_load_in_plain_keras_without_kplug(reviews_run, lm_run, tmp_path):
    from kplug.training.models import load_model

    cases = []
    for result, length in ((reviews_run, 20), (lm_run, 20)):
        path = result.directory / "model.keras"
        x = np.random.default_rng(0).integers(1, 10, (2, length)).astype("int32")
        cases.append((path, x, load_model(path, compile=False).predict(x, verbose=0)))
    testing.assert_loads_without_kplug(cases, tmp_path)
