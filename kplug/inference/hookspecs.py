"""Hooks of the after-training commands (`kplug predict`, `kplug evaluate`) and of the
run's `inference.json`: part of the plugin contract (docs/plugins.md) like
`kplug.hookspecs`, kept beside the code that calls them. The plugin manager adds them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kplug.hookspecs import hookspec

if TYPE_CHECKING:
    from kplug.components import Data, RunContext
    from kplug.recipe import Recipe


@hookspec
def inference_fields(run: RunContext, directory: Path) -> dict[str, Any] | None:
    """Entries a plugin adds to the run's ``inference.json`` when the model is saved into
    `directory` (the text plugin adds ``tokenizer``: its saved files). kplug's own keys
    win over a plugin's; a plugin that raises is reported and its entries left out."""


@hookspec
def evaluation_overrides(recipe: Recipe, inference: dict[str, Any], run_dir: Path) -> list[str]:
    """``key=value`` overrides that make `kplug predict` and `kplug evaluate` read new data
    as the run read its training data (the text plugin pins the run's saved tokenizer
    instead of training a new one). `recipe` is the run's resolved recipe."""


@hookspec(firstresult=True)
def prediction_inputs(
    dataset: str,
    config: Any,
    paths: list[Path],
    texts: list[str],
    pairs: list[str],
    run_dir: Path,
    inference: dict[str, Any],
    ctx: RunContext,
) -> Data | None:
    """Read inputs without labels for `kplug predict`, preprocessed as the run's dataset
    preprocessed its training examples (the run's saved tokenizer and sequence length,
    image size, normalisation). The first plugin that returns a result wins.

    Args:
        dataset: the run's ``data.name``; return None for another plugin's dataset.
        config: that dataset's validated config, from the run's resolved recipe.
        paths: the input files given (a folder is passed as it is; read what is in it).
        texts: inputs given on the command line (``--text``), for text datasets.
        pairs: the second text of each ``--text`` (``--pair``), for sentence-pair data.
        run_dir: the finished run directory (its ``tokenizer/``, ``inference.json``).
        inference: the run's ``inference.json``.
        ctx: a `kplug.RunContext` of the run's recipe without a directory (its registry
            builds cleaning steps and tokenizers).

    Returns:
        a `kplug.Data` whose ``train`` split is ``(x, None)``, x in the form the dataset's
        splits have in training, with the training ``spec`` (class names, tokenizer, text
        form) and ``report["inputs"]``: one display name per example (a file name, the
        text); kplug then adapts it with the run's objective and calls the model. Raise
        `kplug.DataError` for inputs the dataset cannot read (the wrong kind, an empty
        file, images of the wrong channel count).
    """


@hookspec(firstresult=True)
def prediction_rows(
    objective: str, config: Any, model: Any, inputs: Data, run_dir: Path, options: dict[str, Any]
) -> list[dict[str, Any]] | None:
    """Predict for an objective whose outputs are not one score per class (a language
    model generates text). Without it, kplug writes each input's likeliest classes.

    Args:
        objective: the run's ``objective.name``; return None for another plugin's.
        config: that objective's validated config.
        model: the run's model (``model.keras``, loaded uncompiled).
        inputs: what `prediction_inputs` returned.
        run_dir: the finished run directory.
        options: the command's options: ``max_tokens``, ``temperature``, ``top_k``,
            ``seed``.

    Returns:
        one dict per input (``{"input": ..., "generated": ...}``): the output rows.
    """
