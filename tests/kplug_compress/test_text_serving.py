"""`saved_model_with_preprocessing`: a SavedModel of a text classifier that takes raw
strings gives `kplug predict`'s probabilities in a process without kplug; the in-graph
tokenizers give the Python tokenizers' ids; preprocessing without a twin is refused."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from kplug import testing
from kplug.cli import main
from kplug.inference.prediction import predict
from kplug.runner import run

REVIEWS = [
    ("a wonderful film, the actors are great and the story is moving", "pos"),
    ("boring plot and terrible acting, I left early", "neg"),
    ("great music, great fun, I loved every minute", "pos"),
    ("the worst film this year, dull and far too long", "neg"),
]
PAIRS = [("the film is great", "I loved it", "same"), ("dull and long", "what fun", "other"),
         ("great music", "the songs are good", "same"), ("terrible acting", "a moving story",
         "other")]  # fmt: skip
# Longer than the runs' lengths (truncation), empty, and outside the training alphabet.
TEXTS = ["a wonderful film", "Boring PLOT!!  and   terrible\tacting", "", "naïve café ½ ﬁ 🙂",
         " ".join(["great music"] * 40)]  # fmt: skip
SECONDS = ["I loved it", "", "dull " * 30, "ÀÉÎ ΣΑΣ", "fun"]
EXPORT = [{"name": "saved_model_with_preprocessing"}]

LOAD_WITHOUT_KPLUG = """
import json, sys
class BlockKplug:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith("kplug"):
            raise ImportError(f"{name} is blocked: the SavedModel must serve without kplug")
sys.meta_path.insert(0, BlockKplug())
import tensorflow as tf
import tensorflow_text  # registers the tf-text ops (WordPiece) the graph uses
out = {}
for path, inputs in json.loads(sys.argv[1]):
    serve = tf.saved_model.load(path).signatures["serving_default"]
    result = serve(**{name: tf.constant(texts) for name, texts in inputs.items()})
    out[path] = {"probabilities": result["probabilities"].numpy().tolist(),
                 "class": [c.decode() for c in result["class"].numpy()]}
print(json.dumps(out))
"""


def write_csv(path, header, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A character-level RNN classifier with a filter among its cleaning steps."""
    root = tmp_path_factory.mktemp("serving_text")
    path = write_csv(root / "reviews.csv", ["text", "label"], REVIEWS * 4)
    return run(testing.recipe({
        "name": "reviews-serving",
        "data": {"name": "text_files", "path": path, "label_column": "label", "batch_size": 8,
                 "tokenizer": {"name": "char"}, "sequence_length": 40,
                 "clean": [{"name": "length_filter", "min_characters": 2}]},
        "model": {"name": "rnn", "units": 4, "embedding_dim": 4},
        "objective": {"name": "classification"},
        "train": {"epochs": 1},
        "export": EXPORT,
    }), runs_root=root, argv=["test"])  # fmt: skip


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory):
    """A tiny BERT sentence-pair classifier: WordPiece and `[CLS] A [SEP] B [SEP]` packing."""
    root = tmp_path_factory.mktemp("serving_pairs")
    path = write_csv(root / "pairs.csv", ["text", "pair", "label"], PAIRS * 4)
    return run(testing.recipe({
        "name": "pairs-serving",
        "data": {"name": "text_files", "path": path, "label_column": "label",
                 "pair_column": "pair", "batch_size": 8, "sequence_length": 12,
                 "tokenizer": {"name": "wordpiece", "vocab_size": 40, "lowercase": True}},
        "model": {"name": "bert", "layers": 1, "heads": 2, "hidden": 8, "intermediate": 16,
                  "max_length": 32},
        "objective": {"name": "pair_classification", "sequence_length": 20},
        "train": {"epochs": 1},
        "export": EXPORT,
    }), runs_root=root, argv=["test"])  # fmt: skip


def predicted_probabilities(run_dir, class_names, **inputs):
    rows = predict(run_dir, top_k=len(class_names), **inputs)
    return np.array([[dict(row["top_k"])[name] for name in class_names] for row in rows])


def test_saved_models_serve_raw_strings_as_kplug_predict_without_kplug(text_run, pair_run):
    cases = [(text_run.directory, {"texts": TEXTS}), (pair_run.directory,
             {"texts": TEXTS, "pairs": SECONDS})]  # fmt: skip
    request = [(str(d / "saved_model_with_preprocessing"), inputs) for d, inputs in cases]
    result = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_KPLUG, json.dumps(request)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    for (directory, inputs), (path, _) in zip(cases, request, strict=True):
        names = json.loads((directory / "inference.json").read_text())["class_names"]
        expected = predicted_probabilities(directory, names, texts=inputs["texts"],
                                           pairs=inputs.get("pairs", []))  # fmt: skip
        got = np.array(served[path]["probabilities"])
        # kplug predict rounds to 6 decimals
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=path)
        assert served[path]["class"] == [names[i] for i in got.argmax(axis=1)]
    rows = json.loads((text_run.directory / "compression.json").read_text())["rows"]
    assert [r["file"] for r in rows if r["format"] == "saved_model_with_preprocessing"] == [
        "saved_model_with_preprocessing"
    ]


TRICKY = ["a wonderful film, the actors are great", "Boring PLOT!!  and   terrible\tacting",
          "", "naïve café — déjà vu ½ ﬁ", "emoji 🙂 and <pad> <unk> [CLS] tokens",
          "I'm we'll they've 123 4567", "line\nbreak\r\nx", "ÀÉÎ İstanbul ß ΣΑΣ ΌΔΟΣ"]  # fmt: skip


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "char", "lowercase": True},
        {"name": "byte", "lowercase": True},
        {"name": "bpe", "vocab_size": 300, "min_frequency": 1, "lowercase": True},
        {"name": "wordpiece", "vocab_size": 60, "lowercase": True},
        {"name": "sentencepiece", "vocab_size": 80},
    ],
    ids=lambda e: e["name"] + ("-lower" if e.get("lowercase") else ""),
)
def test_in_graph_tokenizers_give_the_python_tokenizers_ids(entry):
    import tensorflow as tf

    from kplug import loaded_registry

    component = loaded_registry().get("tokenizer", entry["name"])
    options = {k: v for k, v in entry.items() if k != "name"}
    tokenizer = component.factory(component.config.model_validate(options), None)
    tokenizer.train([t for t, _ in REVIEWS] * 3 + TRICKY)
    twin = tf.function(tokenizer.in_graph(), input_signature=[tf.TensorSpec([None], tf.string)])
    assert twin(tf.constant(TRICKY)).to_list() == tokenizer.encode_batch(TRICKY)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"tokenizer": {"name": "char"}, "clean": [{"name": "strip_html"}]}, "strip_html"),
        ({}, "no data.tokenizer"),
    ],  # fmt: skip
    ids=["python-only-cleaner", "no-tokenizer"],
)
def test_what_cannot_be_in_the_graph_is_refused_before_training(data, fragment, tmp_path,
                                                                capsys):  # fmt: skip
    path = write_csv(tmp_path / "reviews.csv", ["text", "label"], REVIEWS * 4)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({
        "name": "refused", "data": {"name": "text_files", "path": path, "label_column": "label",
                                    **data},
        "model": {"name": "rnn", "units": 4}, "objective": {"name": "classification"},
        "export": EXPORT,
    }))  # fmt: skip
    code = main(["run", str(recipe), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert fragment in err and "saved_model_with_preprocessing" in err
    assert "Traceback" not in err
    assert not list((tmp_path / "runs").rglob("model.keras"))
