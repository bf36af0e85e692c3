"""What component factories get and return: the run context; data, objectives,
strategies, compressors, exporters.

These are plain base classes with no heavy imports; plugins subclass them. A split of
data is either NumPy (`x`, `y`), where `x` may be a dict of arrays, or an unbatched
`tf.data.Dataset` of `(x, y)` elements; the strategy batches and distributes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kplug.recipe import Recipe, Section
    from kplug.registry import Registry
    from kplug.rundir import RunDirectory
    from kplug.training.checkpoints import Checkpoint

log = logging.getLogger("kplug")


@dataclass
class DataSpec:
    """What the architecture and objective need to know about the data.

    Args:
        input_shape: shape of one example's input, without the batch axis.
        num_classes: number of target classes (classification).
        class_names: optional names of the classes.
        vocabulary_size: token vocabulary size (text).
        input_dtype: dtype of the inputs (`float32`, `int32`, ...).
        extras: anything else a plugin wants to pass along (a tokenizer, a pad id).
    """

    input_shape: tuple[int | None, ...] | None = None
    num_classes: int | None = None
    class_names: list[str] | None = None
    vocabulary_size: int | None = None
    input_dtype: str = "float32"
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Data:
    """Splits of a dataset plus its spec.

    Args:
        train, validation, test: NumPy `(x, y)` tuples or unbatched `tf.data.Dataset`s;
            validation and test may be None.
        spec: the `DataSpec`.
        report: facts for `data_report.json` (counts, cleaning steps).
    """

    train: Any
    validation: Any = None
    test: Any = None
    spec: DataSpec = field(default_factory=DataSpec)
    report: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Data:
        return replace(self, **changes)


@dataclass
class RunContext:
    """One run: its recipe, directory and the components built so far.

    Args:
        recipe: the validated recipe.
        registry: the component registry.
        directory: the run directory (None when only planning or loading data).
        smoke: a smoke run: every stage, a few steps each; components shorten their
            own work (fine-tuning epochs, trials) when it is set.
        argv: the command line, for the manifest.
        trust_model: `--trust-model`: load saved models (`model.init_from`, a teacher)
            even when they need unsafe deserialization or are legacy `.h5` files.
    Attributes set by the runner as it goes: `strategy`, `data`, `spec`, `model`, and
    `resume_from` (the checkpoint a resumed run continues from).
    `state` is a free-form dict plugins may share through (a tokenizer, a teacher).
    """

    recipe: Recipe
    registry: Registry
    directory: RunDirectory | None = None
    smoke: bool = False
    argv: list[str] = field(default_factory=list)
    trust_model: bool = False
    strategy: Strategy | None = None
    data: Data | None = None
    model: Any = None
    resume_from: Checkpoint | None = None
    state: dict[str, Any] = field(default_factory=dict)
    log: logging.Logger = field(default=log, repr=False)

    @property
    def spec(self) -> DataSpec:
        if self.data is None:
            raise RuntimeError("the data is not loaded yet; the spec comes from the dataset")
        return self.data.spec

    @property
    def seed(self) -> int:
        return self.recipe.seed

    def build(self, section: Section) -> Any:
        """Build the component a recipe section names."""
        component = self.registry.get(section.kind, section.name)
        return component.factory(section.config, self)

    def build_nested(self, kind: str, entry: dict[str, Any]) -> Any:
        """Build a component named inside another one's config (`component_list` /
        `component_ref` fields: `{name: ..., **parameters}`)."""
        component = self.registry.get(kind, entry["name"])
        params = {k: v for k, v in entry.items() if k != "name"}
        return component.factory(component.config.model_validate(params), self)

    def make_optimizer(self, **overrides: Any) -> Any:
        """A fresh Keras optimizer from the recipe's `optimizer:` and `train:` sections;
        `overrides` replace options (e.g. `learning_rate=2e-4` for a second optimizer)."""
        from kplug.training.optimizers import make_optimizer

        return make_optimizer(self, **overrides)

    def steps_per_epoch(self) -> int | None:
        """Batches in one epoch, when the train split's size is known."""
        from kplug.data.splits import count

        if self.recipe.train.steps_per_epoch:
            return self.recipe.train.steps_per_epoch
        n = count(self.data.train) if self.data is not None else None
        if n is None:
            return None
        batch = self.recipe.data.options.batch_size
        return -(-n // batch)


class Objective:
    """Turns a network into a trainable task model and says how it is judged.

    Attributes:
        monitor: the metric early stopping and tuning watch (`val_accuracy`, `val_loss`).
        mode: `max` or `min`, the better direction of `monitor`.
    """

    monitor = "val_loss"
    mode = "min"

    def adapt(self, data: Data, ctx: RunContext) -> Data:
        """Change the data for this objective (masking, shifting, pairing)."""
        return data

    def build(self, network: Any, ctx: RunContext) -> Any:
        """Wrap the architecture's network into the Keras model that is trained."""
        return network

    def compile(self, model: Any, ctx: RunContext) -> None:
        """Compile `model` with the recipe's optimizer and this objective's loss/metrics."""
        model.compile(
            optimizer=ctx.make_optimizer(),
            loss=self.loss(ctx),
            metrics=self.metrics(ctx),
            jit_compile=ctx.recipe.train.jit_compile,
        )

    def loss(self, ctx: RunContext) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define loss() or compile()")

    def metrics(self, ctx: RunContext) -> list[Any]:
        return []

    def callbacks(self, ctx: RunContext) -> list[Any]:
        """Keras callbacks of this objective (e.g. GAN sample grids); they run before the
        core ones, so what they add to an epoch's logs reaches metrics.csv."""
        return []

    def report(self, model: Any, data: Data, ctx: RunContext) -> dict[str, Any]:
        """Extra final figures for metrics.json (e.g. bits per token); optional."""
        return {}


class Strategy:
    """Where and how training runs: a variable scope, the input pipeline, the loop.

    Attributes:
        num_replicas: devices that share one global batch.
        is_chief: whether this process writes the run directory.
        training_loop: `fit` (Keras `model.fit`) or the name of another loop, for the
            manifest.
    """

    num_replicas = 1
    is_chief = True
    training_loop = "fit"

    def scope(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def fit(
        self,
        model: Any,
        data: Data,
        *,
        batch_size: int,
        epochs: int,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        callbacks: list[Any] = (),
        verbose: Any = "auto",
        shuffle: bool = True,
        seed: int = 0,
        start_step: int | None = None,
    ) -> dict[str, list[float]]:
        """Train `model` on `data.train`, validating on `data.validation`; the history.

        `start_step` (a resumed run, given only then): training batches already consumed;
        the data continues with the next one. None: `initial_epoch * steps_per_epoch`.
        """
        raise NotImplementedError

    def evaluate(
        self, model: Any, split: Any, *, batch_size: int, steps: int | None = None
    ) -> dict[str, float]:
        """Metrics of `model` on one split, by name (`loss`, `accuracy`, ...)."""
        raise NotImplementedError

    def run_directory(self, runs_root: str | os.PathLike, name: str) -> RunDirectory:
        """Where this process writes the run: a new directory under `runs_root`. A
        multi-worker strategy gives the workers other than the chief a temporary one."""
        from kplug.rundir import RunDirectory

        return RunDirectory.create(runs_root, name)

    def describe(self) -> dict[str, Any]:
        """Facts for the manifest (devices, replicas, loop)."""
        return {"replicas": self.num_replicas, "training_loop": self.training_loop}


class Compressor:
    """One compression step; `apply` returns the compressed model."""

    def apply(self, model: Any, ctx: RunContext) -> Any:
        raise NotImplementedError


class Exporter:
    """Writes a model in one format into the run directory."""

    def export(self, model: Any, directory: Path, ctx: RunContext) -> list[Path]:
        raise NotImplementedError


Factory = Callable[..., Any]
