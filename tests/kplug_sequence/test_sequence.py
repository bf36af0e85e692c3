"""`rnn`, `causal_lm` and `kplug generate`."""

from __future__ import annotations

import numpy as np
import pytest
from kplug_sequence.causal_lm import sliding_windows, token_stream, unigram_entropy_bits
from kplug_sequence.generate import sample

import kplug
from kplug import testing
from kplug.cli import main

LM = {
    "name": "tiny-lm",
    "data": {"name": "pydoc_corpus", "document": "topic", "batch_size": 8,
             "clean": ["collapse_whitespace"], "tokenizer": {"name": "char"}},
    "model": {"name": "rnn", "units": 16, "embedding_dim": 8},
    "objective": {"name": "causal_lm", "sequence_length": 20},
}  # fmt: skip


def test_windows_are_shifted_by_one_token_with_end_tokens_between_documents():
    docs = np.empty(2, dtype=object)
    docs[:] = [np.array([5, 6, 7], np.int32), np.array([8, 9], np.int32)]
    stream = token_stream(docs, end=2)
    assert stream.tolist() == [5, 6, 7, 2, 8, 9, 2]
    windows = sliding_windows(stream, 4, 2)
    assert windows.tolist() == [[5, 6, 7, 2], [7, 2, 8, 9]]
    x, y = windows[:, :-1], windows[:, 1:]
    assert np.array_equal(x[:, 1:], y[:, :-1])
    padded = np.array([[5, 6, 0, 0], [8, 0, 0, 0]], np.int32)
    assert token_stream(padded, end=None).tolist() == [5, 6, 8]


def test_unigram_entropy_in_bits():
    assert unigram_entropy_bits(np.array([1, 2, 3, 4])) == pytest.approx(2.0)
    assert unigram_entropy_bits(np.array([[7, 7], [7, 7]])) == pytest.approx(0.0)


def test_sampling_respects_top_k_and_greedy():
    rng = np.random.default_rng(0)
    probabilities = np.array([0.1, 0.6, 0.3])
    assert sample(probabilities, rng, temperature=0, top_k=0, from_logits=False) == 1
    draws = {sample(probabilities, rng, temperature=1.0, top_k=2, from_logits=False)
             for _ in range(200)}  # fmt: skip
    assert draws == {1, 2}


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_estimate_matches_the_built_parameter_count(cell):
    import keras
    from kplug_sequence.rnn import RNNConfig, build_rnn

    for bidirectional, classes in ((False, None), (True, 3)):
        config = RNNConfig(cell=cell, layers=2, units=6, embedding_dim=5,
                           bidirectional=bidirectional)  # fmt: skip
        spec = kplug.DataSpec(vocabulary_size=40, num_classes=classes, input_dtype="int32")
        ctx = kplug.RunContext(recipe=None, registry=None, data=kplug.Data(None, spec=spec))
        model = build_rnn(config, ctx)
        estimate = testing.check_estimate(
            "architecture", "rnn", config.model_dump(),
            {"vocabulary_size": 40, "num_classes": classes},
        )  # fmt: skip
        assert estimate["parameters"] == model.count_params()
        assert isinstance(model, keras.Model)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    return testing.smoke_run(LM, tmp_path_factory.mktemp("runs"))


def test_causal_lm_smoke_run_reports_bits_per_token_and_keeps_the_tokenizer(lm_run):
    report = lm_run.metrics["language_model"]["validation"]
    assert report["cross_entropy_bits"] > 0 and report["unigram_entropy_bits"] > 3
    data_report = lm_run.directory.read_json("data_report.json")
    assert data_report["cleaning"][0]["step"] == "collapse_whitespace"
    assert data_report["causal_lm"]["train"]["windows"] > 0
    assert (lm_run.directory / "tokenizer" / "kplug_tokenizer.json").is_file()


def test_generate_prints_text_from_the_run_directory_alone(lm_run, capsys):
    args = ["generate", str(lm_run.directory), "--prompt", "The ", "--max-tokens", "15",
            "--seed", "3", "--top-k", "5"]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first  # seeded
    assert first.startswith("The ") and len(first.rstrip("\n")) > len("The ")


def test_generate_refuses_a_run_that_is_not_a_language_model(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("text,label\n" + "good film,pos\nbad film,neg\n" * 6)
    run = testing.smoke_run(
        {"data": {"name": "text_files", "path": str(tmp_path / "r.csv"), "label_column": "label",
                  "tokenizer": "char", "batch_size": 4},
         "model": {"name": "rnn", "cell": "gru", "units": 8, "embedding_dim": 4,
                   "bidirectional": True},
         "objective": {"name": "classification"}},
        tmp_path / "runs",
    )  # fmt: skip
    assert run.metrics["test"]["accuracy"] >= 0
    assert main(["generate", str(run.directory)]) == 2
    assert "'classification' run" in capsys.readouterr().err


def test_a_bidirectional_language_model_is_refused(tmp_path):
    bad = {**LM, "model": {**LM["model"], "bidirectional": True}}
    with pytest.raises(kplug.RecipeError, match="cannot read backwards"):
        testing.smoke_run(bad, tmp_path)
