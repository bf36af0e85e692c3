"""A TensorFlow-free install (`kplug[jax]`): JAX recipes train, and what needs a missing
package says so with exit 2. Each test runs kplug in a child process whose `sitecustomize`
makes the named packages unimportable, as if they were not installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kplug import testing

ROOT = Path(__file__).resolve().parents[1]
TENSORFLOW = ("tensorflow", "tf_keras", "tensorflow_text", "tensorflow_datasets",
              "tensorflow_model_optimization")  # fmt: skip
BLOCKER = """\
import importlib.abc, sys

class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""
GPT2_SMALL = ["model.layers=1", "model.heads=2", "model.hidden=32", "model.intermediate=64",
              "model.attention=full", "objective.sequence_length=32",
              "data.vocabulary_size=256", "data.train_documents=64"]  # fmt: skip

pytestmark = pytest.mark.xdist_group("tensorflow_free")


def without(tmp_path: Path, *packages: str) -> dict[str, str]:
    """Environment of a child process in which `packages` cannot be imported."""
    folder = tmp_path / "blocker"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCKER.format(blocked=tuple(packages)))
    return {"PYTHONPATH": str(folder), "KERAS_BACKEND": "jax"}


@pytest.mark.parametrize(
    ("recipe", "overrides"),
    [
        ("mnist_cnn.yaml", ["data.limit=256"]),
        ("gpt2_124m.yaml", GPT2_SMALL),
        # BERT's masked LM + NSP pretraining; kplug's BPE (with BERT's special tokens) for
        # the wordpiece tokenizer, which needs tf-text.
        (
            "bert_mlm_pydoc.yaml",
            [
                "data.limit=60",
                "model.layers=1",
                "data.tokenizer={name: bpe, vocab_size: 1000, extra_tokens: ['[CLS]', '[MASK]']}",
            ],
        ),
    ],
    ids=["cnn", "gpt2", "bert_mlm"],
)
def test_recipe_trains_on_jax_without_tensorflow(tmp_path, recipe, overrides):
    result = testing.cli("run", str(ROOT / "recipes" / recipe), "--smoke", "backend=jax",
                         *overrides, "--runs-dir", str(tmp_path / "runs"),
                         env=without(tmp_path, *TENSORFLOW), timeout=480)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    run = Path(result.stdout.strip().splitlines()[-1])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["backend"] == "jax"
    assert json.loads((run / "metrics.json").read_text())["test"]["loss"] > 0


def test_tensorflow_backend_without_tensorflow_exits_2(tmp_path):
    result = testing.cli("run", str(ROOT / "recipes" / "mnist_cnn.yaml"), "backend=tensorflow",
                         "--runs-dir", str(tmp_path / "runs"),
                         env=without(tmp_path, *TENSORFLOW))  # fmt: skip
    testing.assert_user_error(result, "'tensorflow' backend", "not installed",
                              "kplug[tensorflow]")  # fmt: skip
    assert not (tmp_path / "runs").exists()


def test_jax_backend_without_jax_exits_2(tmp_path):
    result = testing.cli("run", str(ROOT / "recipes" / "mnist_cnn.yaml"), "backend=jax",
                         "--runs-dir", str(tmp_path / "runs"),
                         env=without(tmp_path, "jax", "jaxlib"))  # fmt: skip
    testing.assert_user_error(result, "'jax' backend", "jax is not installed", "kplug[jax]")
    assert not (tmp_path / "runs").exists()


def test_component_needing_tensorflow_without_it_exits_2(tmp_path, write):
    # The wordpiece tokenizer learns its vocabulary with keras-hub's tf.data helper.
    recipe = write("wordpiece.yaml", """\
name: wordpiece-gpt2
backend: jax
data: {name: pydoc_corpus, batch_size: 8, limit: 40, tokenizer: {name: wordpiece, vocab_size: 300}}
model: {name: gpt2, layers: 1, heads: 2, hidden: 32, intermediate: 64, max_length: 64}
objective: {name: causal_lm, sequence_length: 32}
train: {epochs: 1}
""")  # fmt: skip
    result = testing.cli("run", str(recipe), "--runs-dir", str(tmp_path / "runs"),
                         env=without(tmp_path, *TENSORFLOW))  # fmt: skip
    testing.assert_user_error(result, "needs TensorFlow", "kplug[tensorflow]")
