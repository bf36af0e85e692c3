"""Each compression step and exporter on a tiny model, with the report they write."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kplug import testing

TINY = {
    "seed": 1,
    "data": {"name": "synthetic", "shape": [8, 8, 1], "num_classes": 3, "train_examples": 64,
             "validation_examples": 16, "test_examples": 32, "batch_size": 16},
    "model": {"name": "cnn", "filters": [4, 8], "dense_units": 16},
    "objective": {"name": "classification"},
    "train": {"epochs": 1},
}  # fmt: skip


def run_tiny(tmp_path, compression, export=(), **changes):
    recipe = {**TINY, **changes, "compression": list(compression), "export": list(export)}
    return testing.smoke_run(recipe, tmp_path)


def report(result) -> dict:
    return json.loads((result.directory / "compression.json").read_text())


def rows_by_stage(result) -> dict:
    return {row["stage"]: row for row in report(result)["rows"]}


def test_prune_cluster_qat_and_tflite(tmp_path):
    result = run_tiny(
        tmp_path,
        [
            {"name": "prune", "final_sparsity": 0.75, "layers": ["conv*", "dense1"]},
            {
                "name": "cluster",
                "number_of_clusters": 4,
                "preserve_sparsity": True,
                "layers": ["dense1"],
            },
            {"name": "qat", "preserve": "sparsity"},
        ],  # fmt: skip
        [{"name": "tflite", "mode": "int8"}, "saved_model"],
    )
    rows = rows_by_stage(result)
    assert list(rows) == ["baseline", "1. prune", "2. cluster", "3. qat",
                          "export tflite int8", "export saved_model"]  # fmt: skip
    prune = rows["1. prune"]
    sparsity = prune["details"]["layer_sparsity"]
    assert set(sparsity) == {"conv1", "conv2", "dense1"}  # logits was not chosen
    assert all(abs(s - 0.75) < 0.02 for s in sparsity.values())
    assert prune["nonzero_parameters"] < 0.5 * rows["baseline"]["nonzero_parameters"]
    assert prune["file"] == "compression/01-prune.keras"
    cluster = rows["2. cluster"]["details"]
    assert cluster["distinct_kernel_values"]["dense1"] <= 4
    assert cluster["layer_sparsity"]["dense1"] >= 0.74  # sparsity-preserving clustering
    qat = rows["3. qat"]
    assert qat["format"] == "tf_keras" and qat["file"].endswith(".h5")
    assert qat["nonzero_parameters"] == rows["2. cluster"]["nonzero_parameters"]  # PQAT
    tflite = rows["export tflite int8"]
    assert tflite["file"] in ("model.int8.tflite", "model.int8.sparse.tflite")
    assert 0.0 <= tflite["test"]["accuracy"] <= 1.0 and tflite["latency_ms"] > 0
    assert tflite["bytes"] < rows["baseline"]["bytes"]
    assert (result.directory / "saved_model" / "saved_model.pb").is_file()
    markdown = (result.directory / "compression.md").read_text()
    assert "| 1. prune | `compression/01-prune.keras` |" in markdown


def test_low_rank_then_keras_quantize_and_keras_export(tmp_path):
    from kplug.training.models import load_model

    result = run_tiny(
        tmp_path,
        [{"name": "low_rank", "rank": 2, "layers": ["dense1"]}, {"name": "quantize"}],
        ["keras"],
    )
    rows = rows_by_stage(result)
    low_rank = rows["1. low_rank"]["details"]
    assert low_rank["layers"]["dense1"]["rank"] == 2
    assert low_rank["dense_parameters_after"] < low_rank["dense_parameters_before"]
    quantized = rows["2. quantize"]["details"]["quantized_layers"]
    assert {"dense1_lowrank_a", "dense1_lowrank_b", "logits"} <= set(quantized)
    model = load_model(result.directory / "compressed.keras")
    assert model.get_layer("dense1_lowrank_a").dtype_policy.quantization_mode == "int8"
    assert rows["export keras"]["file"] == "compressed.keras"


def test_low_rank_at_full_rank_is_exact():
    import keras
    from kplug_compress.low_rank import _Factorization, _Rebuild

    inputs = keras.Input((4, 4, 6))
    x = keras.layers.Conv2D(5, 1, strides=2, activation="relu", name="pointwise")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(7, activation="tanh", name="dense")(x)
    model = keras.Model(inputs, outputs)
    plans = {name: _Factorization(model.get_layer(name), rank=99, energy=None)
             for name in ("pointwise", "dense")}  # fmt: skip
    factorized = _Rebuild(plans).clone(model)
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 6)).astype("float32")
    assert np.abs(np.asarray(model(x)) - np.asarray(factorized(x))).max() < 1e-5
    assert "pointwise_lowrank_a" in [layer.name for layer in factorized.layers]
    energy = _Factorization(model.get_layer("dense"), rank=None, energy=0.5)
    assert 1 <= energy.rank < 7 and energy.energy >= 0.5


def test_distill_from_a_teacher_run_and_float_tflite_modes(tmp_path):
    teacher = testing.smoke_run({**TINY, "name": "teacher"}, tmp_path)
    result = run_tiny(
        tmp_path,
        [{"name": "distill", "teacher": str(teacher.directory), "temperature": 2.0,
          "features": [{"teacher": "dense1", "student": "dense1"}],
          "augment": {"rotation": 0.05, "translation": 0.1},
          "compare_with_student_alone": True}],
        [{"name": "tflite", "mode": "dynamic"}, {"name": "tflite", "mode": "float16"}],
        model={"name": "cnn", "filters": [2, 2], "dense_units": 16},
        train={"epochs": 0},
    )  # fmt: skip
    rows = rows_by_stage(result)
    details = rows["1. distill"]["details"]
    assert details["teacher_parameters"] > details["student_parameters"]
    assert set(details["student_alone_test"]) >= {"accuracy", "loss"}
    assert "accuracy" in details["teacher_test"]
    dynamic, half = rows["export tflite dynamic"], rows["export tflite float16"]
    assert dynamic["file"] == "model.dynamic.tflite" and half["file"] == "model.float16.tflite"
    assert "accuracy" in dynamic["test"] and "accuracy" in half["test"]


def test_keras_quantize_on_a_keras_hub_transformer():
    import keras_hub
    from kplug_compress.quantize import Quantize, QuantizeConfig

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8,
    )  # fmt: skip
    inputs = {"token_ids": np.ones((1, 8), "int32"), "segment_ids": np.zeros((1, 8), "int32"),
              "padding_mask": np.ones((1, 8), "int32")}  # fmt: skip
    before = np.asarray(backbone(inputs)["pooled_output"])
    model, details = Quantize(QuantizeConfig(mode="int8"), None).compress(backbone, None)
    after = np.asarray(model(inputs)["pooled_output"])
    assert len(details["quantized_layers"]) >= 6  # attention and feed-forward projections
    assert np.abs(before - after).max() < 0.1


def test_logits_of_a_softmax_dense_are_its_pre_activation_outputs():
    # Not log(softmax) clipped at a floor: a confident model's wrong-class logits stay apart.
    import keras
    from kplug_compress.distill import logits_model

    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(inputs)
    model = keras.Model(inputs, outputs)
    kernel = np.array([[40.0, 0, -30, 10]] * 3, "float32")
    model.get_layer("head").set_weights([kernel, np.array([0, 1, 2, 3], "float32")])
    logits, stripped = logits_model(model)
    x = np.ones((2, 3), "float32")
    expected = x @ kernel + np.array([0, 1, 2, 3])
    assert stripped
    assert np.abs(np.asarray(logits(x)) - expected).max() < 1e-4
    assert {w.path for w in logits.trainable_weights} == {w.path for w in model.trainable_weights}


def test_logits_distillation_is_the_temperature_scaled_kl_divergence():
    from kplug_compress.distill import logits_distillation

    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(2, 4, 5)).astype("float32")
    temperature = 3.0

    def softmax(z):
        e = np.exp(z / temperature - (z / temperature).max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(teacher), softmax(student)
    expected = (p * np.log(p / q)).sum(-1).mean() * temperature**2
    loss = logits_distillation(temperature)
    assert float(loss.compute_loss(teacher, student)) == pytest.approx(expected, rel=1e-4)
    assert float(loss.compute_loss(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)
