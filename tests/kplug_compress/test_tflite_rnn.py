"""TFLite export of an RNN: by default an unrolled copy (TFLite builtins), measured in the
interpreter and equal to Keras; with `unroll: false` the loop stays a Select TF op, which
needs the Flex delegate, and the row says so."""

from __future__ import annotations

import json
import sys

import numpy as np

from kplug import testing


def test_an_lstm_exports_to_tflite_unrolled_or_with_select_tf_ops(tmp_path, monkeypatch):
    import keras
    from kplug_compress.measure import TFLiteRunner

    rows = ["text,label"] + [f'"{t}",{lab}' for t, lab in
                             [("great fun", "pos"), ("dull and long", "neg")] * 8]  # fmt: skip
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    result = testing.smoke_run({
        "data": {"name": "text_files", "path": str(tmp_path / "r.csv"), "label_column": "label",
                 "batch_size": 4, "tokenizer": {"name": "char"}},
        "model": {"name": "rnn", "units": 4, "embedding_dim": 4},
        "objective": {"name": "classification"},
        "export": [{"name": "tflite"}, {"name": "tflite", "mode": "dynamic", "unroll": False}],
    }, tmp_path / "runs")  # fmt: skip
    directory = result.directory
    unrolled = directory / "model.none.tflite"
    assert b"Flex" not in unrolled.read_bytes()
    length = json.loads((directory / "inference.json").read_text())["data"]["input_shape"][0]
    x = np.random.default_rng(0).integers(1, 8, (3, length)).astype(np.int32)
    x[:, length // 2 :] = 0  # padding, masked by the embedding
    model = keras.saving.load_model(directory / "model.keras", compile=False)
    litert = TFLiteRunner(unrolled)
    assert type(litert.interpreter).__module__.startswith("ai_edge_litert")
    np.testing.assert_allclose(litert(x), model.predict(x, verbose=0), atol=1e-5)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # not installed
    fallback = TFLiteRunner(unrolled)
    assert type(fallback.interpreter).__module__.startswith("tensorflow")
    np.testing.assert_array_equal(fallback(x), litert(x))
    assert b"FlexTensorListReserve" in (directory / "model.dynamic.flex.tflite").read_bytes()
    rows = {r["stage"]: r for r in json.loads((directory / "compression.json").read_text())["rows"]}
    assert rows["export tflite none"]["test"]["accuracy"] == rows["baseline"]["test"]["accuracy"]
    assert "Flex delegate" in rows["export tflite dynamic"]["note"]
