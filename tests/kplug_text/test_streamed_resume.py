"""Exact-step resume on streamed data: a run reading memory-mapped token shards
(`causal_lm`'s windows, `mlm_nsp`'s masked sentence pairs, `seq2seq`'s segment pairs),
SIGKILLed in the middle of an epoch and resumed, ends with the weights of an
uninterrupted run (as tests/test_resume.py checks for in-memory data)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_resume import _wait_for_checkpoint  # tests/ is on sys.path (its conftest)

from kplug import testing

pytestmark = pytest.mark.xdist_group("resume")

TRAIN = """\
train: {epochs: 3, checkpoint_every: 5, keep_checkpoints: 3, deterministic: true, verbose: 0}
callbacks: [{name: throttle, seconds: 0.05}]
"""
# objective: (recipe, training examples, steps per epoch, the checkpoint step killed after)
CASES = {
    # 30 pydoc paragraphs: 422 training windows of 17 characters, 27 steps of 16 per epoch.
    "causal_lm": ("""\
data: {name: pydoc_corpus, document: paragraph, limit: 30, tokenizer: {name: char}, batch_size: 16}
model: {name: rnn, units: 8, embedding_dim: 8}
objective: {name: causal_lm, sequence_length: 16}
""", 422, 27, 40),
    # 621 masked sentence pairs over a 200-token WordPiece vocabulary, 20 steps of 32.
    "mlm_nsp": ("""\
data: {name: pydoc_corpus, document: paragraph, limit: 30, batch_size: 32,
       tokenizer: {name: wordpiece, vocab_size: 200, lowercase: true}}
model: {name: bert, layers: 1, heads: 2, hidden: 16, intermediate: 32, max_length: 16,
        dropout: 0.0}
objective: {name: mlm_nsp, sequence_length: 16}
""", 621, 20, 30),
    # 432 (segment, next segment) pairs of 15 characters, 27 steps of 16.
    "seq2seq": ("""\
data: {name: pydoc_corpus, document: paragraph, limit: 30, tokenizer: {name: char}, batch_size: 16}
model: {name: seq2seq_transformer, layers: 1, heads: 2, hidden: 16, intermediate: 32,
        max_length: 16, dropout: 0.0}
objective: {name: seq2seq, sequence_length: 16}
""", 432, 27, 40),
    # 160 labelled training documents (pydoc paragraphs, labelled by content), 10 steps of 16.
    "text_classification": ("""\
data: {name: text_files, path: {corpus}, label_column: label, stream: true, batch_size: 16,
       tokenizer: {name: wordpiece, vocab_size: 200, lowercase: true}}
model: {name: bert, layers: 1, heads: 2, hidden: 16, intermediate: 32, max_length: 32,
        dropout: 0.0}
objective: {name: text_classification, sequence_length: 32}
""", 160, 10, 15),
}  # fmt: skip


def labelled_corpus(path: Path) -> Path:
    """200 pydoc paragraphs, each labelled by whether it shows code."""
    from kplug_text.pydoc_corpus import pydoc_documents

    paragraphs = pydoc_documents("paragraph")[:200]
    path.write_text("".join(json.dumps({"text": p, "label": str(">>>" in p or "::" in p)}) + "\n"
                            for p in paragraphs), encoding="utf-8")  # fmt: skip
    return path


def start(site: Path, cache: Path, *args: str) -> subprocess.Popen:
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path,
           "KPLUG_DATA_CACHE": str(cache)}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "kplug", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def weights_and_steps(model_path: Path) -> tuple[list[np.ndarray], int]:
    import keras

    model = keras.saving.load_model(model_path)  # plain Keras: no compile configuration
    return model.get_weights(), testing.saved_optimizer_steps(model_path)


@pytest.mark.parametrize("objective", list(CASES))
def test_sigkill_mid_epoch_on_streamed_shards_then_resume_matches_an_uninterrupted_run(
    site, tmp_path, objective
):
    _, examples, per_epoch, kill_at = CASES[objective]
    recipe, cache = tmp_path / "run.yaml", tmp_path / "cache"
    body = CASES[objective][0].replace("{corpus}", str(labelled_corpus(tmp_path / "c.jsonl")))
    recipe.write_text(f"name: streamed-{objective}\nseed: 5\n{body}{TRAIN}")
    prepare = start(site, cache, "data", str(recipe))
    assert prepare.wait(timeout=240) == 0, prepare.stderr.read()[-3000:]
    reference = start(site, cache, "run", str(recipe), "--runs-dir", str(tmp_path / "reference"))
    killed = start(site, cache, "run", str(recipe), "--runs-dir", str(tmp_path / "killed"))
    run_dir = _wait_for_checkpoint(tmp_path / "killed", killed, kill_at)  # in epoch 2
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL

    resumed = start(site, cache, "resume", str(run_dir))
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]
    (reference_dir,) = (tmp_path / "reference" / f"streamed-{objective}").iterdir()

    report = json.loads((run_dir / "data_report.json").read_text())
    assert report["prepared"]["reused"] is True  # the resume read the shards of `kplug data`
    counts = report[objective]["train"]
    assert (counts["windows"] if objective == "causal_lm" else counts) == examples
    (resume,) = json.loads((run_dir / "manifest.json").read_text())["resumed"]
    assert resume["global_step"] >= kill_at and resume["step_in_epoch"] > 0  # mid-epoch
    expected, expected_steps = weights_and_steps(reference_dir / "model.keras")
    got, steps = weights_and_steps(run_dir / "model.keras")
    assert steps == expected_steps == 3 * per_epoch
    assert max(float(np.abs(a - b).max()) for a, b in zip(expected, got, strict=True)) <= 1e-6
