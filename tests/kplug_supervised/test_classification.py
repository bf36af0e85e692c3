"""The classification objective: losses, label smoothing, top-k."""

from __future__ import annotations

from kplug import testing

BASE = {
    "data": {"name": "digits", "batch_size": 32},
    "model": {"name": "cnn", "filters": [8], "padding": "same", "dense_units": 16},
}


def test_label_smoothing_one_hot_encodes(tmp_path):
    result = testing.smoke_run(
        {**BASE, "objective": {"name": "classification", "label_smoothing": 0.1, "top_k": [3]}},
        tmp_path,
    )
    test = result.metrics["test"]
    assert set(test) == {"loss", "accuracy", "top3_accuracy"}
    assert test["top3_accuracy"] >= test["accuracy"]


def test_from_logits(tmp_path):
    result = testing.smoke_run(
        {**BASE, "model": {**BASE["model"], "output_activation": "linear"},
         "objective": {"name": "classification", "from_logits": True}},
        tmp_path,
    )  # fmt: skip
    assert result.metrics["test"]["loss"] > 0
