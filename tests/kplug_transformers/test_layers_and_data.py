"""Building blocks of kplug_transformers: local attention, packing, masking, NSP pairs,
label-smoothed cross-entropy, the VADER dataset. No training."""

from __future__ import annotations

import numpy as np
import pytest
from kplug_transformers.packing import pack, segments

import kplug
from kplug import testing
from kplug.context import RunContext
from kplug.plugins import registry

TINY = {"layers": 2, "heads": 2, "hidden": 16, "intermediate": 32, "max_length": 32,
        "dropout": 0.0}  # fmt: skip


def context(vocabulary_size=50, length=12):
    spec = kplug.DataSpec(input_shape=(length,), vocabulary_size=vocabulary_size,
                          input_dtype="int32")  # fmt: skip
    return RunContext(recipe=None, registry=None, data=kplug.Data(None, spec=spec))


def encoder_inputs(length=12, pad=3, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 50, size=(2, length)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, -pad:] = 0
    ids[1, -pad:] = 0
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def test_local_attention_with_a_window_covering_the_sequence_equals_full():
    from kplug_transformers.bert import BertConfig, build_bert, local_bert

    full = build_bert(BertConfig(**TINY), context())
    x = encoder_inputs()
    expected = full.predict_on_batch(x)["sequence_output"]
    covering = local_bert(full, window=11)(x)["sequence_output"]
    narrow = local_bert(full, window=2)(x)["sequence_output"]
    valid = x["padding_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(covering)[valid], expected[valid], atol=1e-5)
    assert not np.allclose(np.asarray(narrow)[valid], expected[valid], atol=1e-3)


def test_local_attention_models_save_and_load(tmp_path):
    from kplug_transformers.bert import BertConfig, build_bert

    from kplug.training.models import load_model

    model = build_bert(BertConfig(**TINY, attention="local", window=2), context())
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", compile=False)
    x = encoder_inputs()
    np.testing.assert_allclose(
        loaded.predict_on_batch(x)["sequence_output"], model.predict_on_batch(x)["sequence_output"]
    )


def test_local_causal_attention_with_a_covering_window_equals_full_gpt2():
    from kplug_transformers.gpt2 import GPT2Config, build_gpt2

    ctx = context()
    full = build_gpt2(GPT2Config(**TINY), ctx)
    local = build_gpt2(GPT2Config(**TINY, attention="local", window=11), ctx)
    local.set_weights(full.get_weights())
    ids = encoder_inputs()["token_ids"][:1]
    np.testing.assert_allclose(local.predict_on_batch(ids), full.predict_on_batch(ids), atol=1e-6)
    narrow = build_gpt2(GPT2Config(**TINY, attention="local", window=1), ctx)
    narrow.set_weights(full.get_weights())
    near = narrow.predict_on_batch(ids)
    # A window of one sees the previous token too: the first two positions are unchanged.
    np.testing.assert_allclose(near[:, :2], full.predict_on_batch(ids)[:, :2], atol=1e-6)
    assert not np.allclose(near[:, 5:], full.predict_on_batch(ids)[:, 5:], atol=1e-4)


def test_local_attention_mask_is_a_band_without_padding():
    from kplug_transformers.local_attention_mask import LocalAttentionMask

    mask = np.asarray(LocalAttentionMask(1)(np.array([[1, 1, 1, 0]])))
    assert mask[0].tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0]]


def test_pack_pairs_with_segment_ids_and_cuts_the_longer_segment():
    x = pack([np.array([5, 6, 7, 8])], [np.array([9])], 7, cls=2, sep=3)
    assert x["token_ids"].tolist() == [[2, 5, 6, 7, 3, 9, 3]]
    assert x["segment_ids"].tolist() == [[0, 0, 0, 0, 0, 1, 1]]
    single = pack([np.array([5])], None, 5, cls=2, sep=3)
    assert single["token_ids"].tolist() == [[2, 5, 3, 0, 0]]
    assert single["padding_mask"].tolist() == [[1, 1, 1, 0, 0]]
    assert [len(s) for s in segments([np.arange(7)], 3)[0]] == [3, 3, 1]


def test_sentence_pairs_are_half_true_next_half_other_documents():
    from kplug_transformers.sentence_pairs import SentencePairs, joined

    documents = [np.arange(d * 1000, d * 1000 + 400, dtype=np.int32) for d in range(1, 6)]
    pairs = SentencePairs(joined(documents), 10, 23, cls=1, sep=2, seed=(0, 0))
    x, y = pairs.gather(np.arange(len(pairs)))
    labels = y["nsp"]
    assert len(pairs) == 5 * 39 and 0.4 < labels.mean() < 0.6
    first, second = x["token_ids"][:, 1:11], x["token_ids"][:, 12:22]
    for a, b, label in zip(first, second, labels, strict=True):
        same_document = a[0] // 1000 == b[0] // 1000
        assert same_document == bool(label)
        if label:
            assert b[0] == a[-1] + 1  # the segment that follows
    # a pair depends on its index only, not on the batch that asks for it
    some = np.array([7, 3, 150])
    assert np.array_equal(pairs.gather(some)[0]["token_ids"], x["token_ids"][some])


def masked_lm_objective(rates=None):
    from kplug_transformers.masked_lm import MaskedLM, MaskedLMConfig

    class Tokenizer:
        special_ids = {"pad": 0, "unk": 1, "end": 2, "[CLS]": 3, "[MASK]": 4}

    objective = MaskedLM(MaskedLMConfig(sequence_length=66, **(rates or {})), None)
    objective.tokenizer, objective.vocabulary_size = Tokenizer(), 1000
    return objective


def test_masking_selects_15_percent_and_corrupts_80_10_10():
    from kplug_transformers.masked_examples import MaskedExamples

    objective = masked_lm_objective()
    documents = np.empty(1, dtype=object)
    documents[0] = np.random.default_rng(0).integers(10, 1000, 64 * 400).astype(np.int32)
    windows = objective.unmasked(documents, 0, None)
    original, _ = windows.gather(np.arange(len(windows)))
    masked = MaskedExamples(windows, objective.mask_generator(), seed=(0, 0))
    x, y = masked.gather(np.arange(len(masked)))
    positions, ids, targets = x["mask_positions"], x["token_ids"], y["mlm"]
    selected = targets != 0
    rows = np.nonzero(selected)[0]
    cols = positions[selected]
    assert len(masked) == 400 and 0.14 < selected.sum() / (400 * 64) < 0.16
    # Targets are the original tokens; [CLS]/[SEP]/padding are never selected.
    assert np.array_equal(original["token_ids"][rows, cols], targets[selected])
    assert not np.isin(original["token_ids"][rows, cols], [0, 2, 3]).any()
    now = ids[rows, cols]
    masked_share = (now == 4).mean()
    kept = (now == targets[selected]).mean()
    assert 0.77 < masked_share < 0.83 and 0.08 < kept < 0.13
    unselected = np.ones_like(ids, bool)
    unselected[rows, cols] = False
    assert np.array_equal(ids[unselected], original["token_ids"][unselected])


def test_an_example_mask_depends_on_its_index_and_seed_only():
    import random

    from kplug_transformers.masked_examples import MaskedExamples

    objective = masked_lm_objective()
    documents = np.empty(1, dtype=object)
    documents[0] = np.random.default_rng(1).integers(10, 1000, 64 * 20).astype(np.int32)
    windows = objective.unmasked(documents, 0, None)
    masked = MaskedExamples(windows, objective.mask_generator(), seed=(5, 0))
    x, y = masked.gather(np.arange(len(masked)))
    random.seed(123)  # the run's own Python random: neither changes the masks nor is changed
    expected_draw = random.random()
    random.seed(123)
    some = np.array([7, 3, 19, 7])
    again, again_y = masked.gather(some)
    assert random.random() == expected_draw
    assert all(np.array_equal(again[k], x[k][some]) for k in x)
    assert np.array_equal(again_y["mlm"], y["mlm"][some])
    assert np.array_equal(masked.take(4).gather(np.arange(4))[1]["mlm"], y["mlm"][:4])
    other = MaskedExamples(windows, objective.mask_generator(), seed=(6, 0))
    assert not np.array_equal(other.gather(np.arange(len(other)))[1]["mlm"], y["mlm"])


def test_mlm_refuses_a_sequence_length_without_room_for_a_token(write, capsys):
    recipe = write("short.yaml", """\
name: short-mlm
data: {name: pydoc_corpus, limit: 5, tokenizer: {name: wordpiece, vocab_size: 300}}
model: {name: bert}
objective: {name: mlm, sequence_length: 2}
""")  # fmt: skip
    testing.assert_main_user_error(capsys, ["validate", str(recipe)], "objective.sequence_length",
                                   "greater than or equal to 3")  # fmt: skip


def test_sparse_crossentropy_smoothing_matches_keras_one_hot_and_ignores_a_class():
    import keras
    from kplug_transformers.sparse_crossentropy import SparseCrossentropy

    logits = np.random.default_rng(1).normal(size=(6, 5)).astype("float32")
    y = np.array([0, 1, 2, 3, 4, 1])
    ours = SparseCrossentropy(from_logits=True, label_smoothing=0.1)(y, logits)
    reference = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.eye(5)[y], logits
    )
    assert float(ours) == pytest.approx(float(reference), rel=1e-5)
    ignoring = SparseCrossentropy(from_logits=True, ignore_class=0)(y, logits)
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y[1:], logits[1:])
    assert float(ignoring) == pytest.approx(float(plain), rel=1e-5)


def test_vader_dataset_labels_by_the_sign_of_the_mean_rating_split_by_token():
    from kplug_text.vader_sentiment import vader_entries

    entries = dict(vader_entries())
    assert len(entries) > 7400
    recipe = testing.recipe({"data": {"name": "vader_sentiment"}, "model": {"name": "bert"},
                             "objective": {"name": "text_classification"}})  # fmt: skip
    ctx = RunContext(recipe, registry())
    data = ctx.build(recipe.data)
    assert data.spec.class_names == ["negative", "positive"]
    seen = []
    for split in (data.train, data.validation, data.test):
        for token, label in zip(*split, strict=True):
            assert (entries[token] > 0) == (label == 1)
            seen.append(token)
    assert len(seen) == len(set(seen)) == len(entries)
    assert 0.09 < len(data.test[0]) / len(seen) < 0.11


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_estimate_matches_the_built_parameter_count(name):
    from kplug_transformers.bert import BertConfig, build_bert
    from kplug_transformers.gpt2 import GPT2Config, build_gpt2

    config_cls, build = (BertConfig, build_bert) if name == "bert" else (GPT2Config, build_gpt2)
    model = build(config_cls(**TINY), context(vocabulary_size=77))
    estimate = testing.check_estimate("architecture", name, TINY, {"vocabulary_size": 77})
    assert estimate["parameters"] == model.count_params()


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_layout_rules_shard_every_block_with_the_right_rank(name):
    import re

    from kplug_transformers.bert import BertConfig, build_bert
    from kplug_transformers.gpt2 import GPT2Config, build_gpt2
    from kplug_transformers.plugin import layout_rules

    build, config_cls = (build_bert, BertConfig) if name == "bert" else (build_gpt2, GPT2Config)
    model = build(config_cls(**TINY), context())
    rules = layout_rules(architecture=name, config=None)
    for pattern, axes in rules.items():
        matched = [v for v in model.weights if re.search(pattern, v.path)]
        assert len(matched) >= (1 if "embedding" in pattern else TINY["layers"]), pattern
        assert all(len(v.shape) == len(axes) for v in matched), pattern
    assert layout_rules(architecture="cnn", config=None) is None
