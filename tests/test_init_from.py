"""`model.init_from` copies the right weight into the right variable: for every shipped
architecture, a run initialized from another run of the same recipe (with another seed,
so that fresh weights would differ) and not trained computes the source model's outputs;
a bidirectional RNN's backward cell gets the backward cell's weights even when the two
models differ (weights matched by path); ambiguity and untrained fresh layers are refused."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kplug import testing
from kplug.errors import KplugError

pytestmark = pytest.mark.xdist_group("init_from")

TRANSFORMER = {"layers": 1, "heads": 2, "hidden": 16, "intermediate": 16, "max_length": 32}
# A small text file (written by the `corpus` fixture) keeps the data stage short.
TEXT = {"name": "text_files", "path": "CORPUS", "txt_document": "line", "batch_size": 4,
        "tokenizer": {"name": "char"}}  # fmt: skip
WORDPIECE = {**TEXT, "tokenizer": {"name": "wordpiece", "vocab_size": 50}}
LABELLED = {**TEXT, "path": "LABELLED", "label_column": "label", "sequence_length": 6}
SYNTHETIC = {"name": "synthetic", "shape": [32, 32, 3], "num_classes": 3, "train_examples": 8,
             "validation_examples": 4, "test_examples": 4, "batch_size": 4}  # fmt: skip

ARCHITECTURES = {
    "cnn": {"data": SYNTHETIC, "model": {"name": "cnn", "filters": [4], "dense_units": 8},
            "objective": {"name": "classification"}},
    "rnn": {"data": TEXT, "model": {"name": "rnn", "units": 8, "embedding_dim": 8},
            "objective": {"name": "causal_lm", "sequence_length": 16}},
    "rnn_bidirectional": {
        "data": LABELLED,
        "model": {"name": "rnn", "units": 8, "embedding_dim": 8, "bidirectional": True},
        "objective": {"name": "classification"}},
    "bert": {"data": WORDPIECE,
             "model": {"name": "bert", **TRANSFORMER}, "objective": {"name": "mlm",
                                                                    "sequence_length": 16}},
    "gpt2": {"data": TEXT, "model": {"name": "gpt2", **TRANSFORMER},
             "objective": {"name": "causal_lm", "sequence_length": 16}},
    "seq2seq_transformer": {"data": WORDPIECE,
                            "model": {"name": "seq2seq_transformer", **TRANSFORMER},
                            "objective": {"name": "seq2seq", "sequence_length": 8}},
    "gan": {"data": {"name": "mnist", "batch_size": 4, "limit": 8},
            "model": {"name": "gan"}, "objective": {"name": "adversarial"}},
    "keras_application": {
        "data": SYNTHETIC,
        "model": {"name": "keras_application", "backbone": "MobileNetV3Small",
                  "weights": None, "dense_units": [8]},
        "objective": {"name": "classification"}},
}  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("corpus")
    words = "the cat sat on a mat and then a dog ran to the red barn by an old mill"
    vocabulary = words.split(" ")
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(vocabulary, 12)) for _ in range(40)]
    (folder / "lines.txt").write_text("\n".join(lines) + "\n")
    (folder / "labelled.csv").write_text(
        "text,label\n" + "".join(f"{line},{i % 2}\n" for i, line in enumerate(lines))
    )
    return {"CORPUS": str(folder / "lines.txt"), "LABELLED": str(folder / "labelled.csv")}


def _recipe(name: str, corpus: dict[str, str], **extra) -> dict:
    recipe = {"name": name, "train": {"epochs": 0, "jit_compile": False},
              **ARCHITECTURES[name], **extra}  # fmt: skip
    data = dict(recipe["data"])
    data["path"] = corpus.get(data.get("path"), data.get("path"))
    return {**recipe, "data": {k: v for k, v in data.items() if v is not None}}


def _outputs(model) -> list[np.ndarray]:
    """The model's outputs on a fixed batch of two made-up inputs of its input structure."""
    rng = np.random.default_rng(0)

    def example(tensor):
        shape = [2, *(d or 8 for d in tensor.shape[1:])]
        if "int" in str(tensor.dtype) or "bool" in str(tensor.dtype):
            return rng.integers(0, 2, shape).astype(str(tensor.dtype))
        return rng.normal(size=shape).astype("float32")

    try:
        structure = model.input
    except AttributeError:  # a subclassed model (the GAN): its functional parts' outputs
        parts = [p for p in model._flatten_layers(include_self=False, recursive=False)
                 if isinstance(p, keras.Model)]  # fmt: skip
        assert parts, f"{model.name} has no input and no functional part"
        return [o for part in parts for o in _outputs(part)]
    outputs = model(keras.tree.map_structure(example, structure), training=False)
    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)]


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_init_from_a_run_of_the_same_recipe_gives_its_outputs(name, corpus, tmp_path):
    source = testing.smoke_run(_recipe(name, corpus, seed=1), tmp_path / "a", smoke=False)
    # Another seed: fresh weights would differ, so equal outputs come from init_from.
    target = testing.smoke_run(
        _recipe(name, corpus, seed=2), tmp_path / "b", smoke=False,
        overrides=[f"model.init_from={source.directory}"],
    )  # fmt: skip
    load = keras.saving.load_model
    source_model = load(source.directory / "model.keras", compile=False)
    target_model = load(target.directory / "model.keras", compile=False)
    want, got = _outputs(source_model), _outputs(target_model)
    assert max(float(np.abs(a - b).max()) for a, b in zip(want, got, strict=True)) <= 1e-6
    for a, b in zip(source_model.get_weights(), target_model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert not target.directory.read_json("init_from.json")["skipped"]


def _bidirectional(classes: int, *, twins: bool = False):
    """Embedding, a bidirectional LSTM and a head of `classes` (and `_Twins`)."""
    inputs = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(20, 4, name="embedding")(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(3, name="lstm"), name="bi")(x)
    if twins:
        x = _Twins(name="twins")(x)
    outputs = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs)


@keras.saving.register_keras_serializable(package="kplug_test_init_from")
class _Twins(keras.layers.Layer):
    """Two Dense layers that share one name: their weights share one path."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Dense(6, name="proj")
        self.second = keras.layers.Dense(6, name="proj")

    def call(self, x):
        return self.second(self.first(x))


def _lstm_weights(model, direction: str) -> list[np.ndarray]:
    layer = model.get_layer("bi")
    return getattr(layer, f"{direction}_layer").get_weights()


def test_weights_are_matched_by_path_when_the_architectures_differ(tmp_path):
    from kplug.training.initialize import initialize_from

    source = _bidirectional(3)
    source.save(tmp_path / "source.keras")
    target = _bidirectional(5)  # another head: not the identical architecture
    report = initialize_from(target, str(tmp_path / "source.keras"))
    assert report["matched_by"] == "path"
    for direction in ("forward", "backward"):
        for a, b in zip(_lstm_weights(source, direction), _lstm_weights(target, direction),
                        strict=True):  # fmt: skip
            assert np.array_equal(a, b), direction
    assert "bi/backward_lstm/lstm_cell" in report["loaded"]
    assert report["skipped"]["logits"].startswith("shapes differ")


def test_a_path_two_weights_share_is_refused_not_guessed(tmp_path):
    from kplug.training.initialize import initialize_from

    source = _bidirectional(3, twins=True)
    source(np.zeros((1, 5), "int32"))
    source.save(tmp_path / "source.keras")
    target = _bidirectional(5, twins=True)
    target(np.zeros((1, 5), "int32"))
    with pytest.raises(KplugError, match="more than one weight .*twins/proj"):
        initialize_from(target, str(tmp_path / "source.keras"))


def test_an_untrained_run_refuses_layers_left_fresh(tmp_path):
    from kplug.training.initialize import initialize_from

    source = _bidirectional(3)
    source.save(tmp_path / "source.keras")
    with pytest.raises(KplugError, match=r"train.epochs=0.*logits \(excluded"):
        initialize_from(_bidirectional(3), str(tmp_path / "source.keras"), exclude=["logits"],
                        training=False)  # fmt: skip
    with pytest.raises(KplugError, match=r"train.epochs=0.*logits \(shapes differ"):
        initialize_from(_bidirectional(4), str(tmp_path / "source.keras"), training=False)
    # With training, a fresh head is what init_exclude is for.
    report = initialize_from(_bidirectional(3), str(tmp_path / "source.keras"),
                             exclude=["logits"])  # fmt: skip
    assert list(report["skipped"]) == ["logits"]
