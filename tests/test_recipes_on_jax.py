"""Every shipped model recipe smoke-runs on the JAX backend (`--smoke backend=jax`), all in
one child process (one JAX start); those declared TensorFlow-only are refused at
validation (exit 2 on the command line) and are exactly the expected ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if not p.name.startswith("_"))
# Need a service or an earlier run (tests/test_recipes.py SMOKED_ELSEWHERE), or are searches.
NOT_HERE = {"web_corpus_lm.yaml", "compress/mnist_distill.yaml",
            "transfer/finetune_digits_5_9.yaml", "bert_sentiment_from_mlm.yaml",
            "tune/mnist_cnn_lr.yaml"}  # fmt: skip
TENSORFLOW_ONLY = {
    "mnist_cnn_multiworker.yaml": "strategy 'multi_worker'",
    "compress/mnist_prune_quantize.yaml": "compression",
}
SMALL = {"gpt2_124m.yaml": ["model.layers=1", "model.heads=2", "model.hidden=32",
                            "model.intermediate=64", "model.attention=full",
                            "objective.sequence_length=32", "data.vocabulary_size=256",
                            "data.train_documents=64"]}  # fmt: skip
DRIVER = """
import json, sys
from kplug import load_recipe
from kplug.errors import RecipeError
from kplug.runner import run

out = {}
for path, overrides in json.loads(sys.argv[1]):
    try:
        recipe = load_recipe(path, ["backend=jax", *overrides])
    except RecipeError as error:
        out[path] = "refused: " + str(error)
        continue
    try:
        result = run(recipe, runs_root=sys.argv[2], smoke=True, argv=["test"])
        out[path] = result.status
    except Exception as error:
        out[path] = f"failed: {type(error).__name__}: {error}"
print("RESULT " + json.dumps(out))
"""


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT / "recipes"))


@pytest.mark.xdist_group("jax_recipes")
def test_every_model_recipe_smoke_runs_on_jax(tmp_path):
    chosen = [(str(p), SMALL.get(_id(p), [])) for p in RECIPES if _id(p) not in NOT_HERE]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(chosen), str(tmp_path)],
        capture_output=True, text=True, timeout=1500,
        env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    results = {_id(Path(path)): status for path, status in json.loads(lines[-1][7:]).items()}
    print(json.dumps(results, indent=1))
    for name, status in results.items():
        if name in TENSORFLOW_ONLY:
            assert status.startswith("refused") and "tensorflow" in status, (name, status)
            assert TENSORFLOW_ONLY[name] in status, (name, status)
        else:
            assert status == "completed", (name, status)
    assert set(TENSORFLOW_ONLY) <= set(results)
