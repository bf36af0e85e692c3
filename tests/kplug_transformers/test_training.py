"""Transformer runs through the whole pipeline: pretraining objectives, generation,
fine-tuning from a run, and the core training options on transformer models."""

from __future__ import annotations

import numpy as np
import pytest

from kplug import testing
from kplug.cli import main

pytestmark = pytest.mark.xdist_group("transformers")

SIZE = {"layers": 2, "heads": 2, "hidden": 32, "intermediate": 64, "max_length": 64}
GPT = {
    "name": "tiny-gpt",
    "data": {"name": "pydoc_corpus", "document": "topic", "batch_size": 8,
             "clean": ["collapse_whitespace"], "tokenizer": {"name": "char"}},
    "model": {"name": "gpt2", **SIZE, "dropout": 0.0},
    "objective": {"name": "causal_lm", "sequence_length": 32},
    "train": {"jit_compile": False},
}  # fmt: skip
BERT = {
    "name": "tiny-bert",
    "data": {"name": "pydoc_corpus", "document": "section", "batch_size": 8,
             "clean": ["collapse_whitespace"],
             "tokenizer": {"name": "wordpiece", "vocab_size": 400, "lowercase": True}},
    "model": {"name": "bert", **SIZE},
    "objective": {"name": "mlm_nsp", "sequence_length": 32},
    "train": {"jit_compile": False},
}  # fmt: skip


def weights(result):
    import keras

    model = keras.saving.load_model(result.directory / "model.keras", compile=False)
    return model.get_weights()


def test_gpt2_causal_lm_trains_and_generates(tmp_path, capsys):
    result = testing.smoke_run(GPT, tmp_path)
    assert np.isfinite(result.metrics["test"]["loss"])
    assert "language_model" in result.metrics
    capsys.readouterr()
    code = main(["generate", str(result.directory), "--prompt", "The ", "--max-tokens", "5"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("The ") and len(out.rstrip("\n")) > len("The ")


def test_mlm_nsp_pretrains_and_a_classifier_starts_from_its_encoder(tmp_path):
    pretrained = testing.smoke_run(BERT, tmp_path / "pre")
    report = pretrained.metrics["pretraining"]
    assert {"mlm_loss", "nsp_loss", "loss"} <= set(report)
    assert "mlm_accuracy" in pretrained.metrics["test"]
    finetune = testing.smoke_run(
        {
            "name": "tiny-finetune",
            "data": {
                "name": "vader_sentiment",
                "batch_size": 8,
                "sequence_length": 6,
                "tokenizer": {"name": "pretrained_wordpiece", "source": str(pretrained.directory)},
            },
            "model": {"name": "bert", **SIZE, "init_from": str(pretrained.directory)},
            "objective": {"name": "text_classification"},
            "train": {"jit_compile": False},
        },  # fmt: skip
        tmp_path / "fine",
    )
    loaded = finetune.directory.read_json("init_from.json")["loaded"]  # layer paths
    names = {name for path in loaded for name in path.split("/")}
    assert {"token_embedding", "transformer_layer_0", "transformer_layer_1"} <= names
    assert "logits" not in names
    assert (finetune.directory / "tokenizer" / "vocab.txt").read_text() == (
        pretrained.directory / "tokenizer" / "vocab.txt"
    ).read_text()


def test_gradient_accumulation_is_exact_on_a_transformer(tmp_path):
    # One SGD step on 8 windows == two accumulated steps of 4 (no dropout, same order).
    common = ["optimizer.name=sgd", "optimizer.learning_rate=0.5", "train.epochs=1",
              "data.shuffle=false", "data.limit=8", "train.validation_steps=1"]  # fmt: skip
    whole = testing.smoke_run(GPT, tmp_path / "a", smoke=False, overrides=[
        *common, "data.batch_size=8", "train.steps_per_epoch=1"])  # fmt: skip
    accumulated = testing.smoke_run(GPT, tmp_path / "b", smoke=False, overrides=[
        *common, "data.batch_size=4", "train.steps_per_epoch=2",
        "train.gradient_accumulation_steps=2"])  # fmt: skip
    fresh = testing.smoke_run(GPT, tmp_path / "c", smoke=False, overrides=[
        *common, "train.epochs=0"])  # fmt: skip
    a, b, start = weights(whole), weights(accumulated), weights(fresh)
    assert max(np.abs(x - s).max() for x, s in zip(a, start, strict=True)) > 1e-3
    assert max(np.abs(x - y).max() for x, y in zip(a, b, strict=True)) <= 1e-5


def test_remat_gives_a_transformer_block_the_plain_gradients():
    # On TensorFlow a recompute_grad nested in another loses inner weights' gradients;
    # kplug keeps remat on the outermost layers (whole blocks) only.
    import keras
    import keras_hub
    import tensorflow as tf

    from kplug.training.remat import bind_keyword_arguments, outermost_only

    bind_keyword_arguments()
    ids = np.random.default_rng(0).integers(1, 50, (4, 16)).astype("int32")
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}

    def backbone():
        keras.utils.set_random_seed(1)
        return keras_hub.models.GPT2Backbone(
            vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, dropout=0.0, max_sequence_length=16,
        )  # fmt: skip

    def gradients(model):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(model(inputs, training=True)))
            return tape.gradient(loss, model.trainable_variables)

        return [tf.convert_to_tensor(g).numpy() for g in step()]

    plain = gradients(backbone())
    with keras.RematScope(mode="full"):
        checkpointed = backbone()
    kept = outermost_only(checkpointed)
    assert {"transformer_layer_0", "transformer_layer_1"} <= set(kept)
    assert all(
        layer._remat_mode is None
        for name in ("transformer_layer_0", "transformer_layer_1")
        for layer in checkpointed.get_layer(name)._flatten_layers(include_self=False)
    )
    for a, b in zip(gradients(checkpointed), plain, strict=True):
        assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(b).max())


def test_remat_of_listed_inner_layers_is_kept():
    import keras
    import keras_hub

    from kplug.training.remat import outermost_only

    with keras.RematScope(mode="list_of_layers", layer_names=["feedforward_intermediate_dense"]):
        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, max_sequence_length=16,
        )  # fmt: skip
    assert outermost_only(backbone) == ["feedforward_intermediate_dense"] * 2
    block = backbone.get_layer("transformer_layer_0")
    (dense,) = [layer for layer in block._flatten_layers()
                if layer.name == "feedforward_intermediate_dense"]  # fmt: skip
    assert dense._remat_mode is not None  # still rematerialized


def test_remat_trains_a_transformer_like_without_it(tmp_path):
    common = ["optimizer.name=sgd", "optimizer.learning_rate=0.5", "train.epochs=1",
              "data.shuffle=false", "data.limit=16", "data.batch_size=8",
              "train.steps_per_epoch=2", "train.validation_steps=1"]  # fmt: skip
    plain = testing.smoke_run(GPT, tmp_path / "a", smoke=False, overrides=common)
    remat = testing.smoke_run(GPT, tmp_path / "b", smoke=False,
                              overrides=[*common, "train.remat=true"])  # fmt: skip
    assert remat.metrics["train"]["loss"] == pytest.approx(plain.metrics["train"]["loss"], 1e-5)
    for a, b in zip(weights(remat), weights(plain), strict=True):
        assert np.abs(a - b).max() <= 1e-5


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_a_transformer_without_nan(tmp_path, policy):
    import keras

    try:
        result = testing.smoke_run(
            BERT,
            tmp_path,
            overrides=[
                f"train.mixed_precision={policy}",
                "objective.label_smoothing=0.1",
            ],  # fmt: skip
        )
    finally:
        keras.config.set_dtype_policy("float32")
    assert all(np.isfinite(v) for v in result.metrics["test"].values())
    assert all(np.isfinite(v) for v in result.metrics["train"].values())


def test_seq2seq_transformer_trains_with_teacher_forcing(tmp_path):
    result = testing.smoke_run(
        {
            **BERT,
            "model": {"name": "seq2seq_transformer", **SIZE},
            "objective": {"name": "seq2seq", "sequence_length": 16},
        },  # fmt: skip
        tmp_path,
    )
    assert np.isfinite(result.metrics["test"]["loss"])
    assert 0.0 <= result.metrics["test"]["accuracy"] <= 1.0


def test_teacher_forcing_shifts_the_target_by_one_token():
    from kplug_transformers.seq2seq import Seq2Seq, Seq2SeqConfig

    documents = np.empty(1, dtype=object)
    documents[0] = np.arange(10, 19, dtype=np.int32)
    x, y = Seq2Seq(Seq2SeqConfig(sequence_length=4), None).pairs(documents, start=3, end=2)
    assert x["encoder_token_ids"].tolist() == [[10, 11, 12, 0], [13, 14, 15, 0]]
    assert x["decoder_token_ids"].tolist() == [[3, 13, 14, 15], [3, 16, 17, 18]]
    assert y.tolist() == [[13, 14, 15, 2], [16, 17, 18, 2]]
