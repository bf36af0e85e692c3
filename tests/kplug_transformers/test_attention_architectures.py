"""`attention: sliding_window | axial | lsh` and `reversible: true` on `bert` and `gpt2`:
parameter counts, runs through the pipeline, and bad combinations (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest

from kplug import testing

pytestmark = pytest.mark.xdist_group("transformers")

TINY = {"layers": 2, "heads": 2, "hidden": 16, "intermediate": 32, "max_length": 32,
        "dropout": 0.0}  # fmt: skip
OPTIONS = {
    "sliding_window": {"attention": "sliding_window", "window": 4, "global_tokens": 1},
    "axial": {"attention": "axial", "axial_rows": 4},
    "lsh": {"attention": "lsh", "bucket_size": 4, "hash_rounds": 2},
    "reversible_lsh": {"attention": "lsh", "bucket_size": 4, "reversible": True},
    "reversible": {"reversible": True},
}
GPT = """\
name: bad
data: {name: pydoc_corpus, document: topic, batch_size: 4, limit: 8,
       clean: [collapse_whitespace], tokenizer: {name: char}}
model: {name: gpt2, layers: 1, heads: 2, hidden: 16, intermediate: 16, max_length: 32, %s}
objective: {name: causal_lm, sequence_length: 16}
train: {epochs: 1, steps_per_epoch: 1, jit_compile: false}
"""


def context(vocabulary_size=50, length=16):
    import kplug
    from kplug.context import RunContext

    spec = kplug.DataSpec(input_shape=(length,), vocabulary_size=vocabulary_size,
                          input_dtype="int32")  # fmt: skip
    return RunContext(recipe=None, registry=None, data=kplug.Data(None, spec=spec))


@pytest.mark.parametrize(
    ("name", "option"),
    [("bert", "sliding_window"), ("bert", "reversible_lsh"), ("gpt2", "axial"), ("gpt2", "lsh"),
     ("gpt2", "reversible")],
)  # fmt: skip
def test_estimate_matches_the_built_model_and_it_runs(name, option):
    from kplug_transformers.bert import BertConfig, build_bert
    from kplug_transformers.gpt2 import GPT2Config, build_gpt2

    config_cls, build = (BertConfig, build_bert) if name == "bert" else (GPT2Config, build_gpt2)
    config = {**TINY, **OPTIONS[option]}
    model = build(config_cls(**config), context(vocabulary_size=77))
    estimate = testing.check_estimate("architecture", name, config, {"vocabulary_size": 77})
    assert estimate["parameters"] == model.count_params()
    ids = np.random.default_rng(0).integers(1, 77, size=(2, 16)).astype("int32")
    inputs = ids if name == "gpt2" else {"token_ids": ids, "segment_ids": 0 * ids,
                                         "padding_mask": np.ones_like(ids)}  # fmt: skip
    out = model.predict_on_batch(inputs)
    out = out if name == "gpt2" else out["sequence_output"]
    assert out.shape[:2] == (2, 16) and np.isfinite(out).all()


def test_gpt2_with_reversible_sliding_window_blocks_trains_saves_and_generates(tmp_path):
    # One run for both (the suite's time): the custom gradient inside Keras' compiled
    # fit, the .keras round trip, and generation, whose prompts have any length.
    from kplug.cli import main

    recipe = {
        "name": "tiny-gpt",
        "data": {"name": "pydoc_corpus", "document": "topic", "batch_size": 4, "limit": 8,
                 "clean": ["collapse_whitespace"], "tokenizer": {"name": "char"}},
        "model": {"name": "gpt2", **TINY, "attention": "sliding_window", "window": 4,
                  "reversible": True},
        "objective": {"name": "causal_lm", "sequence_length": 16},
        "train": {"jit_compile": False},
    }  # fmt: skip
    result = testing.smoke_run(recipe, tmp_path)
    assert np.isfinite(result.metrics["test"]["loss"])
    assert main(["generate", str(result.directory), "--prompt", "The", "--max-tokens", "3"]) == 0


@pytest.mark.parametrize("option", ["axial", "lsh"])
def test_axial_and_lsh_decoders_generate_after_prompts_of_any_length(option):
    # Their layers accept only lengths of rows x columns / whole chunks: generation
    # right-pads every window to the training length; in a causal model what follows a
    # position does not change its scores (exactly so for axial).
    from kplug_sequence.generate import next_token_scores
    from kplug_transformers.gpt2 import GPT2Config, build_gpt2

    model = build_gpt2(GPT2Config(**TINY, **OPTIONS[option]), context(vocabulary_size=77))
    ids = [int(i) for i in np.random.default_rng(0).integers(1, 77, size=16)]
    for length in (1, 5, 11, 16):  # 4 rows, buckets of 4
        scores = next_token_scores(model, ids[:length], sequence_length=16)
        assert scores.shape == (77,) and np.isfinite(scores).all()
    if option == "axial":
        full_window = np.asarray(model(np.asarray([ids], np.int32)))[0, 7]
        np.testing.assert_allclose(next_token_scores(model, ids[:8], 16), full_window, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "fragments"),
    [
        ("attention: lsh, bucket_size: 5", ("model.bucket_size (5)", "length 16")),
        ("attention: axial, axial_rows: 3", ("not a multiple of model.axial_rows (3)", "e.g. 4")),
    ],
)
def test_lengths_that_do_not_fit_the_attention_are_user_errors(write, capsys, tmp_path, model,
                                                               fragments):  # fmt: skip
    path = write("r.yaml", GPT % model)
    runs = tmp_path / "runs"
    testing.assert_main_user_error(capsys, ["run", str(path), "--runs-dir", str(runs)], *fragments)
    assert not runs.exists() or not any(runs.rglob("model.keras"))


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        ("attention: lsh", "needs bucket_size"),
        ("attention: axial", "needs axial_rows"),
        ("attention: sliding_window", "needs a window"),
        ("attention: full, global_tokens: 1", "only used with attention: sliding_window"),
        ("attention: axial, axial_rows: 4, bucket_size: 4", "only used with attention: lsh"),
        ("reversible: true, dropout: 0.1", "set dropout: 0"),
        ("reversible: true, dropout: 0, attention: local, window: 2", "do not support"),
        ("attention: lsh, bucket_size: 4, preset: some/dir", "build new blocks"),
    ],
)
def test_inconsistent_attention_keys_are_validation_errors(write, capsys, model, fragment):
    path = write("r.yaml", GPT.replace("layers: 1, heads: 2, hidden: 16, intermediate: 16, "
                                       "max_length: 32, ", "") % model)  # fmt: skip
    testing.assert_main_user_error(capsys, ["validate", str(path)], fragment)
