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

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
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
