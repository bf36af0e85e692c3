"""Every recipe in recipes/ starts with the command that runs it, validates, and
smoke-runs (a few steps of every stage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kplug import load_recipe
from kplug.cli import main
from kplug.runner import run

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if not p.name.startswith("_"))
# Recipes that need a service or a run a test makes first, smoke-run in their plugin's tests.
SMOKED_ELSEWHERE: dict[str, str] = {
    "web_corpus_lm.yaml": "tests/kplug_text/test_web_crawl.py::"
    "test_web_corpus_lm_recipe_crawls_cleans_tokenizes_and_trains (a site on 127.0.0.1)",
    "compress/mnist_distill.yaml": "tests/kplug_compress/test_compress_recipes.py (a teacher)",
    "transfer/finetune_digits_5_9.yaml": "tests/kplug_vision/test_transfer.py (a pretrained run)",
    "bert_sentiment_from_mlm.yaml": "tests/kplug_transformers/test_training.py::"
    "test_mlm_nsp_pretrains_and_a_classifier_starts_from_its_encoder (a pretraining run)",
    "gpt2_124m.yaml": "tests/test_tensorflow_free.py::test_recipe_trains_on_jax_without_"
    "tensorflow[gpt2] (backend: jax, in a child process, with a small model)",
}


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT / "recipes"))


def _command(path: Path) -> str:
    """The kplug subcommand a recipe's first line names: `run` or `tune`."""
    return path.read_text().split(maxsplit=3)[2]


def test_there_are_recipes():
    assert any(p.name == "mnist_cnn.yaml" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=_id)
def test_recipe_validates_and_names_its_command(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# kplug ") and _id(path) in first, (
        f"{path} must start with the command that runs it, e.g. '# kplug run recipes/{_id(path)}'"
    )
    load_recipe(path)


def _resolved(path: Path, folder: Path):
    """The recipe as its run's `recipe.resolved.yaml` holds it, loaded again (what `kplug
    resume` does): it must validate and resolve to itself."""
    recipe = load_recipe(path)
    resolved = folder / "recipe.resolved.yaml"
    resolved.write_text(recipe.to_yaml(), encoding="utf-8")
    again = load_recipe(resolved)
    assert again.resolved() == recipe.resolved()
    return again


@pytest.mark.parametrize("path", RECIPES, ids=_id)
def test_the_resolved_recipe_validates_as_it_is(path, tmp_path):
    _resolved(path, tmp_path)


@pytest.mark.parametrize("path", RECIPES, ids=_id)
def test_recipe_smoke_runs(path, tmp_path):
    if _id(path) in SMOKED_ELSEWHERE:
        pytest.skip(f"smoke-run by {SMOKED_ELSEWHERE[_id(path)]}")
    if _command(path) == "tune":
        # A search is smoke-run as a search: `kplug tune --smoke` runs at most 2 trials, each
        # a smoke run through the same runner, and writes the table and best.yaml.
        directory = tmp_path / "tune"
        assert main(["tune", str(path), "--smoke", "--directory", str(directory)]) == 0
        assert (directory / "results.json").is_file() and (directory / "best.yaml").is_file()
        return
    # The resolved recipe runs: it is what `kplug resume` continues with.
    result = run(_resolved(path, tmp_path), runs_root=tmp_path, smoke=True, argv=["test"])
    assert result.status == "completed"
    assert (result.directory / "metrics.json").is_file()
