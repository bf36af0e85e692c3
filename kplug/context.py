"""`RunContext`: what a component factory gets besides its config."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kplug.components import Data, DataSpec, Strategy
    from kplug.recipe import Recipe, Section
    from kplug.registry import Registry
    from kplug.rundir import RunDirectory
    from kplug.training.checkpoints import Checkpoint

log = logging.getLogger("kplug")


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
        from kplug.splits import count

        if self.recipe.train.steps_per_epoch:
            return self.recipe.train.steps_per_epoch
        n = count(self.data.train) if self.data is not None else None
        if n is None:
            return None
        batch = self.recipe.data.options.batch_size
        return -(-n // batch)
