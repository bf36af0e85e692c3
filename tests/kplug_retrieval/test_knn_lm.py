"""kNN-LM: the datastore's retrieval distribution, a `knn_lm` run building its faiss
index in the run directory, reusing it from another run, and refusing one made with
another tokenizer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from kplug_retrieval.datastore import Datastore

from kplug import load_model, testing

pytestmark = pytest.mark.xdist_group("retrieval")

TINY = {"name": "gpt2", "layers": 2, "heads": 2, "hidden": 32, "intermediate": 64,
        "max_length": 32}  # fmt: skip
TOKENIZER = {"name": "char", "lowercase": False}


def test_the_knn_distribution_is_a_softmax_over_negative_distances_summed_per_token():
    keys = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]], np.float32)
    values = np.array([7, 7, 8, 9])
    store = Datastore.build(keys, values, tokenizer={"name": "t", "sha256": "x"})
    queries = np.zeros((2, 2), np.float32)
    p = store.next_token_probability(queries, np.array([7, 8]), k=3, temperature=2.0)
    # squared distances 0, 1, 4 -> weights exp(0), exp(-0.5), exp(-2), normalized.
    weights = np.exp([0.0, -0.5, -2.0]) / np.exp([0.0, -0.5, -2.0]).sum()
    assert p == pytest.approx([weights[0] + weights[1], weights[2]])
    ivf = Datastore.build(np.tile(keys, (40, 1)), np.tile(values, 40), kind="ivf", nlist=4,
                          nprobe=4, tokenizer={"name": "t", "sha256": "x"})  # fmt: skip
    assert ivf.metadata["entries"] == 160 and ivf.metadata["index"] == "ivf"
    assert ivf.next_token_probability(queries, np.array([9, 9]), k=8, temperature=1.0)[0] < 1e-6


def corpus(tmp_path) -> str:
    """Lines drawn from a few fixed random strings: validation repeats training contexts,
    which a datastore remembers and a barely trained model does not."""
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    pool = ["".join(rng.choice(letters, 40)) for _ in range(6)]
    lines = [pool[i] for i in rng.integers(0, len(pool), 240)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def knn_recipe(path: str, tokenizer: dict = TOKENIZER, **objective) -> dict:
    return {
        "name": "knn",
        "data": {"name": "text_files", "path": path, "txt_document": "line", "batch_size": 16,
                 "tokenizer": tokenizer},
        "model": TINY,
        "objective": {"name": "knn_lm", "sequence_length": 24, "k": 8, "temperature": 1.0,
                      "lambda": 0.5, **objective},
        "optimizer": {"name": "adam", "learning_rate": 1.0e-3},
        "train": {"epochs": 1, "steps_per_epoch": 3, "verbose": 0},
    }  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("knn")
    path = corpus(tmp_path)
    result = testing.smoke_run(knn_recipe(path), tmp_path / "runs", smoke=False)
    return path, result.directory.path, result.metrics


def test_a_knn_lm_run_keeps_its_datastore_and_retrieval_lowers_bits_per_token(trained):
    _, run_dir, metrics = trained
    knn = metrics["knn_lm"]
    report = json.loads((run_dir / "data_report.json").read_text())
    training_tokens = report["examples"]["train"] * 24
    assert knn["datastore"]["entries"] == training_tokens
    assert (run_dir / "knn" / "keys.faiss").stat().st_size >= training_tokens * 32 * 4
    assert json.loads((run_dir / "knn" / "datastore.json").read_text())["dimension"] == 32
    validation = knn["validation"]
    # The LM alone is the causal_lm report's figure (same positions, same model).
    assert validation["lm_bits"] == pytest.approx(
        metrics["language_model"]["validation"]["cross_entropy_bits"], abs=2e-3
    )
    assert validation["knn_lm_bits"] < validation["lm_bits"] - 0.5
    assert validation["bits_by_lambda"]["0.0"] == validation["lm_bits"]
    assert math.isfinite(validation["bits_by_lambda"]["0.75"])


def test_another_run_reuses_the_datastore_with_the_same_model(trained, tmp_path):
    path, run_dir, metrics = trained
    grid = {"k": [2, 4], "temperature": [1.0, 10.0], "lambda": [0.0, 0.5]}
    recipe = knn_recipe(path, datastore=str(run_dir), k=4, tune=grid)
    recipe["model"] = {**TINY, "init_from": str(run_dir)}
    recipe["train"] = {"epochs": 0}
    result = testing.smoke_run(recipe, tmp_path / "runs", smoke=False)
    assert not (result.directory / "knn").exists()  # nothing built again
    # The same model: init_from copies every block's own weights (the blocks' sublayers
    # share names: query, key, value, ...).
    first, second = (load_model(d / "model.keras", compile=False).get_weights()
                     for d in (run_dir, result.directory.path))  # fmt: skip
    assert len(first) == len(second)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    again = result.metrics["knn_lm"]
    assert again["datastore"]["entries"] == metrics["knn_lm"]["datastore"]["entries"]
    assert again["validation"]["lm_bits"] == pytest.approx(
        metrics["knn_lm"]["validation"]["lm_bits"], abs=1e-3
    )
    assert again["validation"]["k"] == 4
    # Tuning: the grid's best on validation, which holds the recipe's own setting (k 4,
    # temperature 1, lambda 0.5) and the LM alone (lambda 0); test scored at the choice.
    tuned = again["tuned"]
    assert len(tuned["grid"]) == 8
    assert tuned["validation_bits"] == min(r["validation_bits"] for r in tuned["grid"])
    assert tuned["validation_bits"] <= again["validation"]["knn_lm_bits"]
    assert tuned["validation_bits"] < again["validation"]["lm_bits"]
    assert tuned["chosen"]["lambda"] == 0.5 and math.isfinite(tuned["test_bits"])


def test_a_datastore_from_a_run_with_another_tokenizer_exits_2(trained, tmp_path, capsys):
    path, run_dir, _ = trained
    recipe = knn_recipe(path, tokenizer={"name": "byte"}, datastore=str(run_dir))
    recipe["train"] = {"epochs": 0}
    file = tmp_path / "r.yaml"
    file.write_text(json.dumps(recipe), encoding="utf-8")
    testing.assert_main_user_error(
        capsys, ["run", str(file), "--runs-dir", str(tmp_path / "runs")],
        "was built with tokenizer 'char'", "this run's tokenizer is 'byte'",
        "objective.datastore: null",
    )  # fmt: skip
