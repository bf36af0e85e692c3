"""Objectives that stream their examples from prepared token shards give the arrays, and
the input pipeline the batches, of the same examples built in memory."""

from __future__ import annotations

import numpy as np
import pytest
from kplug_distribute.input_pipeline import make_dataset
from kplug_transformers.sentence_pairs import SentencePairs
from kplug_transformers.seq2seq import SegmentPairs

import kplug
from kplug import testing
from kplug.context import RunContext
from kplug.plugins import registry
from kplug.stages import load_data

DATA = {"name": "pydoc_corpus", "document": "section", "limit": 120,
        "clean": ["collapse_whitespace"], "tokenizer": {"name": "char"}}  # fmt: skip
WORDPIECE = {"name": "wordpiece", "vocab_size": 300, "lowercase": True}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KPLUG_DATA_CACHE", str(tmp_path / "cache"))


def adapted(objective: dict, model: str, stream: bool, **data):
    recipe = testing.recipe({"data": {**DATA, **data, "stream": stream}, "model": {"name": model},
                             "objective": objective})  # fmt: skip
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
            y, want = y["nsp"], (None, want[1]["nsp"])
        assert np.array_equal(y, want[1]), split


def first_batches(split, count: int = 3) -> list:
    dataset = make_dataset(split, batch_size=8, training=True, seed=5, start_step=2)
    return [batch for _, batch in zip(range(count), dataset.as_numpy_iterator(), strict=False)]


def test_seq2seq_streams_the_pairs_it_builds_in_memory(cache):
    objective = {"name": "seq2seq", "sequence_length": 12}
    streamed = adapted(objective, "seq2seq_transformer", stream=True)
    in_memory = adapted(objective, "seq2seq_transformer", stream=False)
    assert isinstance(streamed.train, SegmentPairs)
    assert streamed.report["seq2seq"] == in_memory.report["seq2seq"]
    assert_same_examples(streamed, in_memory)
    # the input pipeline: the same batches from step 2 on (a resumed run's position)
    for (x, y), (want_x, want_y) in zip(first_batches(streamed.train),
                                        first_batches(in_memory.train), strict=True):  # fmt: skip
        assert x.keys() == want_x.keys() and np.array_equal(y, want_y)
        assert all(np.array_equal(x[k], want_x[k]) for k in x)
    assert len(streamed.train.take(5)) == 5


def test_nsp_streams_the_pairs_it_builds_in_memory(cache):
    objective = {"name": "nsp", "sequence_length": 24}
    streamed = adapted(objective, "bert", stream=True, tokenizer=WORDPIECE)
    in_memory = adapted(objective, "bert", stream=False, tokenizer=WORDPIECE)
    assert isinstance(streamed.train, SentencePairs)
    assert streamed.report["nsp"] == in_memory.report["nsp"]
    assert_same_examples(streamed, in_memory)
    labels = streamed.train.gather(np.arange(len(streamed.train)))[1]["nsp"]
    assert 0.4 < labels.mean() < 0.6
    (x, y), (want_x, want_y) = first_batches(streamed.train, 1) + first_batches(in_memory.train, 1)
    assert all(np.array_equal(x[k], want_x[k]) for k in x)
    assert np.array_equal(y["nsp"], want_y["nsp"])
