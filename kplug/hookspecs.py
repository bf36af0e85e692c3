"""The kplug plugin contract: every hook a plugin can implement, on one page.

A plugin is a module (or object) with functions decorated by `kplug.hookimpl` whose names
are hooks below. Hooks are called with keyword arguments only, so an implementation may
accept any subset of the arguments. Built-in plugins (``plugins/kplug_*``) are loaded
through the ``kplug`` entry-point group, exactly like third-party distributions.

Registration hooks receive a ``register`` callback::

    register(name, factory, *, config=SomeConfig, summary="...", backends=(...), estimate=None)

- ``name``: how recipes refer to the component; a name registered twice is an error.
- ``factory(config, ctx)``: builds the component when a run needs it. ``config`` is the
  validated ``config`` model instance, ``ctx`` the `kplug.RunContext`. Import heavy
  libraries (TensorFlow, Keras) inside the factory, never at module import time.
- ``config``: a `kplug.Config` (pydantic) subclass describing the parameters, validated
  before anything heavy is imported; ``kplug describe NAME`` shows it.
- ``summary``: one line for ``kplug list``.
- ``backends``: Keras backends the component works on; empty means all.
- ``estimate(config, facts) -> dict``: optional, cheap facts for ``kplug plan`` without
  building anything (a dataset's example counts and shapes, an architecture's parameter
  count, a strategy's replica count).

Hooks only some plugins use are declared by those plugins with `add_hookspecs` (the text
plugin's ``register_tokenizers``, the tuner's ``register_tuners``, the distribution
plugin's ``layout_rules``): this module names no plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from kplug.components import Data
    from kplug.context import RunContext
    from kplug.recipe import Recipe
    from kplug.registry import RecipeSection, Register, RegisterCommand

hookspec = pluggy.HookspecMarker("kplug")

# ---------------------------------------------------------------------------------------
# Extending the contract: hooks, component kinds and recipe sections of a plugin's own.
# ---------------------------------------------------------------------------------------


@hookspec(historic=True)
def add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    """Declare a plugin's own hooks (as pytest's ``pytest_addhooks``): call
    ``plugin_manager.add_hookspecs(module)`` with a module of ``kplug.hookspec`` functions.

    Called once for each plugin when it is registered. Other plugins may implement those
    hooks whether or not the declaring plugin is loaded: without it they are never called.
    """


@hookspec
def component_kinds() -> dict[str, str]:
    """Component kinds a plugin adds: registration hook name -> kind.

    The hook must be declared with `add_hookspecs`; e.g. a text plugin returns
    ``{"register_tokenizers": "tokenizer"}`` and other plugins register tokenizers through
    ``register_tokenizers(register)``, which `kplug list tokenizer` then shows.
    """


@hookspec
def recipe_sections() -> dict[str, RecipeSection]:
    """Top-level recipe sections a plugin adds: section key -> `kplug.RecipeSection`.

    A section names one component of its kind, by ``name:`` or by the key the
    `RecipeSection` gives (a tuner's ``search: {tuner: grid, ...}``); the rest of it is that
    component's config, validated like any other section. ``recipe.section(key)`` returns
    it (None when the recipe has none).
    """


# ---------------------------------------------------------------------------------------
# Registration: called once, when the registry is first needed.
# ---------------------------------------------------------------------------------------


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets (the recipe's ``data:`` section).

    The factory returns a `kplug.Data`: the train / validation / test splits (NumPy
    arrays or unbatched ``tf.data.Dataset``) and a `kplug.DataSpec`.
    """


@hookspec
def register_architectures(register: Register) -> None:
    """Register architectures (the recipe's ``model:`` section).

    The factory reads ``ctx.spec`` (the data's `DataSpec`) and returns the network: a
    Keras model, or a dict of Keras models for objectives that need several (a GAN).
    Architectures build networks only; the objective turns them into a trainable task.
    """


@hookspec
def register_objectives(register: Register) -> None:
    """Register objectives (the recipe's ``objective:`` section).

    The factory returns a `kplug.Objective`: it adapts the data (masking, shifting,
    pairing), wraps the network into the task model and compiles it with its losses and
    metrics.
    """


@hookspec
def register_strategies(register: Register) -> None:
    """Register distribution strategies (the recipe's ``strategy:`` section).

    The factory returns a `kplug.Strategy`: a variable-creation scope, the input pipeline
    for its replicas and the training loop (``fit`` / ``evaluate``).
    """


@hookspec
def register_compressors(register: Register) -> None:
    """Register compression steps (the recipe's ``compression:`` list).

    The factory returns a `kplug.Compressor`, whose ``apply(model, ctx)`` returns the
    compressed model; steps run in recipe order after evaluation.
    """


@hookspec
def register_callbacks(register: Register) -> None:
    """Register training callbacks (the recipe's ``callbacks:`` list).

    The factory returns a ``keras.callbacks.Callback``, added to the core ones.
    """


@hookspec
def register_exporters(register: Register) -> None:
    """Register exporters (the recipe's ``export:`` list).

    The factory returns a `kplug.Exporter`, whose ``export(model, directory, ctx)`` writes
    files into the run directory and returns their paths.
    """


@hookspec
def register_commands(register: RegisterCommand) -> None:
    """Add ``kplug`` subcommands (they are not registry components).

    ``register(name, configure, *, summary="")``: ``configure(parser)`` adds arguments to
    the command's ``argparse`` parser and returns the handler, ``handler(args) -> int``
    (the exit code). Handlers raise `kplug.KplugError` for bad input. A core command, or
    a plugin's registered earlier, wins a name clash (a warning names both).
    """


# ---------------------------------------------------------------------------------------
# Lifecycle: called by the runner, in this order.
# ---------------------------------------------------------------------------------------


@hookspec
def recipe_loaded(recipe: Recipe) -> None:
    """Called once for each loaded recipe (`kplug.load_recipe`), after it is validated and
    before anything runs. Recipes derived from it (`Recipe.with_overrides`, a smoke run's)
    fire nothing, except where a plugin runs them as new recipes (each tune trial).

    Args:
        recipe: the resolved `kplug.Recipe`; raise `kplug.RecipeError` to refuse it.
    """


@hookspec
def run_started(run: RunContext) -> None:
    """Called once the run directory exists and the strategy scope is ready.

    Args:
        run: the `kplug.RunContext` (recipe, directory, strategy, seed).
    """


@hookspec
def run_finished(run: RunContext, result: dict[str, Any]) -> None:
    """Called after the run, successful or not, once the manifest is written.

    Args:
        run: the `kplug.RunContext`.
        result: ``{"status": "completed" | "failed" | "interrupted", "metrics": {...}}``.
    """


# ---------------------------------------------------------------------------------------
# Saved models
# ---------------------------------------------------------------------------------------


@hookspec
def keras_objects() -> dict[str, Any]:
    """Custom Keras classes (layers, models, losses) that saved `.keras` files may hold.

    Called before kplug loads a model (`model.init_from`, `kplug generate`, a teacher), so
    that plugins can import their layer modules lazily.

    Returns:
        a dict of registered name (as in the saved config) -> class; may be empty.
    """


# ---------------------------------------------------------------------------------------
# Using a trained model (`kplug predict`, `kplug evaluate`)
# ---------------------------------------------------------------------------------------


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
