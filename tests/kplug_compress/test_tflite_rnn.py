"""TFLite export of an RNN: the builtins cannot lower its TensorList loop, so the exporter
converts it with Select TF ops (mode auto) and says that it needs the Flex delegate."""

from __future__ import annotations

import json

from kplug import testing


def test_an_lstm_classifier_exports_to_tflite_with_select_tf_ops(tmp_path):
    rows = ["text,label"] + [f'"{t}",{lab}' for t, lab in
                             [("great fun", "pos"), ("dull and long", "neg")] * 8]  # fmt: skip
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    result = testing.smoke_run({
        "data": {"name": "text_files", "path": str(tmp_path / "r.csv"), "label_column": "label",
                 "batch_size": 4, "tokenizer": {"name": "char"}},
        "model": {"name": "rnn", "units": 4, "embedding_dim": 4},
        "objective": {"name": "classification"},
        "export": [{"name": "tflite"}],
    }, tmp_path / "runs")  # fmt: skip
    flatbuffer = (result.directory / "model.none.tflite").read_bytes()
    assert b"FlexTensorListReserve" in flatbuffer  # the loop kept as a Select TF op
    (row,) = [r for r in json.loads((result.directory / "compression.json").read_text())["rows"]
              if r["stage"] == "export tflite none"]  # fmt: skip
    assert "Flex delegate" in row["note"]
