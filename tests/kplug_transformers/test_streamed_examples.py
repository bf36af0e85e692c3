"""Objectives that stream their examples from prepared token shards give the arrays, and
the input pipeline the batches, of the same examples built in memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kplug_distribute.array_batches import array_batches
from kplug_distribute.input_pipeline import make_dataset
from kplug_transformers.masked_examples import MaskedExamples
from kplug_transformers.packed_documents import PackedDocuments
from kplug_transformers.sentence_pairs import SentencePairs
from kplug_transformers.seq2seq import SegmentPairs

import kplug
from kplug import testing
from kplug.context import RunContext
from kplug.plugins import registry
from kplug.stages import load_data

WORDPIECE = {"name": "wordpiece", "vocab_size": 40, "lowercase": True}


@pytest.fixture
def data(tmp_path, monkeypatch) -> dict:
    """A small JSONL corpus (documents of 5 to 120 words) in a fresh data cache."""
    monkeypatch.setenv("KPLUG_DATA_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    words = ["the", "model", "reads", "a", "token", "stream", "of", "shards", "cached", "once"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(5, 120)))) for _ in range(150)]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return {"name": "text_files", "path": str(path), "tokenizer": {"name": "char"}}


def adapted(data: dict, objective: dict, model: str, stream: bool, **options):
    recipe = testing.recipe({"data": {**data, **options, "stream": stream},
                             "model": {"name": model}, "objective": objective})  # fmt: skip
    ctx = RunContext(recipe, registry())
    return ctx.build(recipe.objective).adapt(load_data(ctx), ctx)


def assert_same_examples(streamed, in_memory):
    for split in ("train", "validation", "test"):
        got, want = getattr(streamed, split), getattr(in_memory, split)
        assert hasattr(got, "gather") and len(got) == kplug.count_examples(want) > 0
        x, y = got.gather(np.arange(len(got)))
        assert x.keys() == want[0].keys()
        for key in x:
            assert np.array_equal(x[key], want[0][key]), (split, key)
        if isinstance(y, dict):
            assert y.keys() == want[1].keys()
            assert all(np.array_equal(y[k], want[1][k]) for k in y), split
        else:
            assert np.array_equal(y, want[1]), split


def first_batches(split, count: int = 3) -> list:
    dataset = make_dataset(split, batch_size=8, training=True, seed=5, start_step=2)
    return [batch for _, batch in zip(range(count), dataset.as_numpy_iterator(), strict=False)]


def test_seq2seq_streams_the_pairs_it_builds_in_memory(data):
    objective = {"name": "seq2seq", "sequence_length": 12}
    streamed = adapted(data, objective, "seq2seq_transformer", stream=True)
    in_memory = adapted(data, objective, "seq2seq_transformer", stream=False)
    assert isinstance(streamed.train, SegmentPairs)
    assert streamed.report["seq2seq"] == in_memory.report["seq2seq"]
    assert_same_examples(streamed, in_memory)
    # the input pipeline: the same batches from step 2 on (a resumed run's position)
    for (x, y), (want_x, want_y) in zip(first_batches(streamed.train),
                                        first_batches(in_memory.train), strict=True):  # fmt: skip
        assert x.keys() == want_x.keys() and np.array_equal(y, want_y)
        assert all(np.array_equal(x[k], want_x[k]) for k in x)
    assert len(streamed.train.take(5)) == 5


def test_nsp_streams_the_pairs_it_builds_in_memory(data):
    objective = {"name": "nsp", "sequence_length": 16}
    streamed = adapted(data, objective, "bert", stream=True, tokenizer=WORDPIECE)
    in_memory = adapted(data, objective, "bert", stream=False, tokenizer=WORDPIECE)
    assert isinstance(streamed.train, SentencePairs)
    assert streamed.report["nsp"] == in_memory.report["nsp"]
    assert_same_examples(streamed, in_memory)
    labels = streamed.train.gather(np.arange(len(streamed.train)))[1]["nsp"]
    assert 0.4 < labels.mean() < 0.6
    (x, y), (want_x, want_y) = first_batches(streamed.train, 1) + first_batches(in_memory.train, 1)
    assert all(np.array_equal(x[k], want_x[k]) for k in x)
    assert np.array_equal(y["nsp"], want_y["nsp"])


@pytest.mark.parametrize("name", ["mlm", "mlm_nsp"])
def test_masked_objectives_stream_the_masked_examples_they_build_in_memory(data, name):
    objective = {"name": name, "sequence_length": 16}
    streamed = adapted(data, objective, "bert", stream=True, tokenizer=WORDPIECE)
    in_memory = adapted(data, objective, "bert", stream=False, tokenizer=WORDPIECE)
    assert isinstance(streamed.train, MaskedExamples)
    assert streamed.report[name] == in_memory.report[name]
    assert_same_examples(streamed, in_memory)
    x, y = streamed.validation.gather(np.arange(len(streamed.validation)))
    selected = y["mlm"] != 0
    assert 0.1 < selected.sum() / (x["padding_mask"].sum() - 2 * len(selected)) < 0.2
    (x, y), (want_x, want_y) = first_batches(streamed.train, 1) + first_batches(in_memory.train, 1)
    assert x.keys() == want_x.keys() and y.keys() == want_y.keys()
    assert all(np.array_equal(x[k], want_x[k]) for k in x)
    assert all(np.array_equal(y[k], want_y[k]) for k in y)
    # without TensorFlow: the PyDataset of NumPy splits gathers the streamed one alike
    options = {"batch_size": 8, "training": True, "seed": 5, "start_step": 2}
    x, y = array_batches(streamed.train, **options)[3]
    want_x, want_y = array_batches(in_memory.train, **options)[3]
    assert all(np.array_equal(x[k], want_x[k]) for k in x)
    assert all(np.array_equal(y[k], want_y[k]) for k in y)


def test_text_classification_streams_the_labelled_examples_it_builds_in_memory(data, tmp_path):
    records = [json.loads(line) for line in Path(data["path"]).read_text().splitlines()]
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps({**r, "label": "ab"[len(r["text"]) % 2]}) + "\n"
                            for r in records), encoding="utf-8")  # fmt: skip
    labelled = {**data, "path": str(path), "label_column": "label", "tokenizer": WORDPIECE}
    objective = {"name": "text_classification", "sequence_length": 40}
    streamed = adapted(labelled, objective, "bert", stream=True)
    in_memory = adapted(labelled, objective, "bert", stream=False)
    assert isinstance(streamed.train, PackedDocuments)
    assert streamed.report["text_classification"] == in_memory.report["text_classification"]
    assert streamed.spec.num_classes == in_memory.spec.num_classes == 2
    assert_same_examples(streamed, in_memory)
    (x, y), (want_x, want_y) = first_batches(streamed.train, 1) + first_batches(in_memory.train, 1)
    assert all(np.array_equal(x[k], want_x[k]) for k in x) and np.array_equal(y, want_y)
    assert len(streamed.train.take(5)) == 5
