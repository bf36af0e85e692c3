"""The `search:` section: a search space over recipe keys and the tuners' options.

A space maps dotted recipe keys to what to try:

```yaml
space:
  optimizer.learning_rate: [0.001, 0.01, 0.1]            # a choice
  model.dense_units: {min: 32, max: 128, step: 32}       # an int range (a float one with floats)
  optimizer.weight_decay: {min: 1.0e-5, max: 1.0e-2, sampling: log}
  model.filters: {values: [[16, 32], [32, 64]]}         # a choice of lists
  train.epochs: {values: [2, 4, 8], ordered: true}       # numbers with an order
  model.units: {min: 32, max: 256, when: {model.cell: lstm}}   # only when model.cell is lstm
```

Everything here is plain pydantic: KerasTuner is imported only when `declare` is called.
"""

from __future__ import annotations

import json
import math
from contextlib import ExitStack
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

import kplug

GRAMMAR = (
    "give a list of choices ([0.001, 0.01]), a range {min: 1, max: 9[, step: 2]"
    "[, sampling: log]} or {values: [...][, ordered: true]}"
)
# Keys a search must not change: the run name, the search itself, the base recipe.
UNSEARCHABLE = ("name", "search", "extends")

Number = Annotated[int | float, Field(allow_inf_nan=False)]


class SpaceEntry(kplug.Config):
    """One searched recipe key: a choice among values, or a numeric range."""

    values: list[Any] | None = Field(None, description="a choice: try each of these values")
    ordered: bool = Field(
        False,
        description="the values are numbers with an order; Bayesian optimization then treats "
        "them as a scale rather than as unrelated categories",
    )
    min: Number | None = Field(None, description="a range: the smallest value")
    max: Number | None = Field(None, description="a range: the largest value")
    step: Annotated[int | float, Field(gt=0)] | None = Field(
        None, description="a range: the distance between values (a factor with log sampling)"
    )
    sampling: Literal["linear", "log", "reverse_log"] = Field(
        "linear", description="a range: how values are spread; log for learning rates"
    )
    when: dict[str, Any] = Field(
        default_factory=dict,
        description="search this key only when other searched keys have these values, "
        "e.g. {model.cell: lstm} or {model.cell: [lstm, gru]}",
    )

    @model_validator(mode="before")
    @classmethod
    def _list_is_a_choice(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"values": data}
        if not isinstance(data, dict):
            raise ValueError(f"{data!r} is not a search dimension: {GRAMMAR}")
        return data

    @model_validator(mode="after")
    def _check(self) -> SpaceEntry:
        is_range = self.min is not None or self.max is not None
        if self.values is not None and is_range:
            raise ValueError("give either values (a choice) or min and max (a range), not both")
        if self.values is None:
            if not is_range:
                raise ValueError(f"nothing to search: {GRAMMAR}")
            self._check_range()
        else:
            self._check_choice()
        for parent, wanted in self.when.items():
            if wanted == []:
                raise ValueError(f"when: {parent}: give the value(s) that activate this key")
        return self

    def _check_choice(self) -> None:
        if not self.values:
            raise ValueError("the list of choices is empty: give at least one value")
        if self.step is not None or self.sampling != "linear":
            raise ValueError("step and sampling belong to ranges {min, max}, not to a choice")
        seen: set[str] = set()
        for value in self.values:
            text = _text(value)
            if text in seen:
                raise ValueError(f"the choice {value!r} is listed twice")
            seen.add(text)
        if self.ordered and not self._numeric:
            raise ValueError("ordered: true needs numbers; other values have no order")

    def _check_range(self) -> None:
        if self.min is None or self.max is None:
            raise ValueError("a range needs both min and max")
        if isinstance(self.min, bool) or isinstance(self.max, bool):
            raise ValueError("min and max must be numbers")
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.sampling != "linear" and self.min <= 0:
            raise ValueError(f"{self.sampling} sampling needs min > 0 (got {self.min})")
        if self.ordered:
            raise ValueError("ordered belongs to {values: [...]}; a range is ordered already")

    # === What KerasTuner sees ===

    @property
    def is_choice(self) -> bool:
        return self.values is not None

    @property
    def _numeric(self) -> bool:
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.values)

    @property
    def is_integer_range(self) -> bool:
        bounds = (self.min, self.max, self.step if self.step is not None else 1)
        return not self.is_choice and all(isinstance(v, int) for v in bounds)

    @property
    def _kind(self) -> str:
        """How values travel through KerasTuner (and its gRPC protocol): as str, int, float,
        or as JSON text for anything else (booleans, null, lists, mappings, mixed types)."""
        if not self.is_choice:
            return "int" if self.is_integer_range else "float"
        if all(isinstance(v, str) for v in self.values):
            return "str"
        if self._numeric:
            return "int" if all(isinstance(v, int) for v in self.values) else "float"
        return "json"

    def encode(self, value: Any) -> Any:
        """A recipe value as KerasTuner holds it."""
        kind = self._kind
        if kind == "json":
            return _text(value)
        return {"str": str, "int": int, "float": float}[kind](value)

    def decode(self, value: Any) -> Any:
        """A KerasTuner value back as the recipe value."""
        kind = self._kind
        if kind == "json":
            return json.loads(value)
        return {"str": str, "int": int, "float": float}[kind](value)

    def candidates(self) -> list[Any]:
        """Values to check against the recipe before searching: every choice, or both ends."""
        return list(self.values) if self.is_choice else [self.min, self.max]

    def contains(self, value: Any) -> bool:
        if self.is_choice:
            return _text(value) in {_text(v) for v in self.values}
        return isinstance(value, int | float) and self.min <= value <= self.max

    def declare(self, hp: Any, name: str) -> None:
        """Add this dimension to a `keras_tuner.HyperParameters` as `name`."""
        if self.is_choice:
            hp.Choice(name, [self.encode(v) for v in self.values], ordered=self.ordered)
        elif self.is_integer_range:
            hp.Int(name, self.min, self.max, step=self.step, sampling=self.sampling)
        else:
            hp.Float(name, float(self.min), float(self.max), step=self.step,
                     sampling=self.sampling)  # fmt: skip

    def grid_size(self) -> int | None:
        """How many values a grid tries; None for a float range without step (KerasTuner
        then tries 10 values)."""
        if self.is_choice:
            return len(self.values)
        if self.step is None:
            return self.max - self.min + 1 if self.is_integer_range else None
        if self.sampling == "linear":
            return int(math.floor((self.max - self.min) / self.step + 1e-9)) + 1
        return None


class TrialEarlyStopping(kplug.Config):
    """Stop a trial once the search metric stops improving (Keras `EarlyStopping`)."""

    patience: PositiveInt = Field(2, description="epochs without improvement before stopping")
    min_delta: NonNegativeFloat = Field(0.0, description="smallest change that counts")


class SearchConfig(kplug.Config):
    """What every tuner shares: the space, the metric and how each trial trains."""

    space: dict[str, SpaceEntry] = Field(
        description="recipe keys (dotted) to search, each a list of choices or a range"
    )
    metric: str | None = Field(
        None,
        description="what trials are judged by, as Keras logs it: val_<name> on the "
        "validation data or <name> on the training data; null: the objective's monitor",
    )
    direction: Literal["min", "max"] | None = Field(
        None, description="null: the objective's mode for its monitor, else from the name"
    )
    executions_per_trial: PositiveInt = Field(
        1, description="train each combination this often (seeds seed, seed+1, ...); mean counts"
    )
    early_stopping: TrialEarlyStopping | None = Field(
        None, description="stop a trial when the metric stops improving; null: train all epochs"
    )

    @field_validator("space")
    @classmethod
    def _check_space(cls, space: dict[str, SpaceEntry]) -> dict[str, SpaceEntry]:
        if not space:
            raise ValueError(
                "the search space is empty: give at least one recipe key, e.g. "
                "optimizer.learning_rate: [0.001, 0.01, 0.1]"
            )
        for key, entry in space.items():
            if key.split(".")[0] in UNSEARCHABLE:
                raise ValueError(f"{key}: {', '.join(UNSEARCHABLE)} cannot be searched")
            for parent, wanted in entry.when.items():
                _check_condition(space, key, parent, wanted)
        ordered_keys(space)  # raises on a cycle of conditions
        return space

    def declare(self, hp: Any) -> None:
        """Add the whole space, conditions included, to a `keras_tuner.HyperParameters`."""
        for key in ordered_keys(self.space):
            entry = self.space[key]
            with ExitStack() as scopes:
                for parent, wanted in entry.when.items():
                    parent_entry = self.space[parent]
                    values = [parent_entry.encode(v) for v in _as_list(wanted)]
                    scopes.enter_context(hp.conditional_scope(parent, values))
                entry.declare(hp, key)

    def grid_size(self) -> int | None:
        """Combinations in the full grid, when there are no conditions and all are finite."""
        if any(entry.when for entry in self.space.values()):
            return None
        sizes = [entry.grid_size() for entry in self.space.values()]
        return math.prod(sizes) if None not in sizes else None


class GridConfig(SearchConfig):
    max_trials: PositiveInt | None = Field(None, description="null: every combination")


class RandomConfig(SearchConfig):
    max_trials: PositiveInt = Field(10, description="combinations to try")
    seed: int | None = Field(None, description="seed of the sampling; null: the recipe's seed")


class BayesianConfig(RandomConfig):
    num_initial_points: PositiveInt | None = Field(
        None, description="random trials before the Gaussian process; null: 3 per dimension"
    )
    alpha: PositiveFloat = Field(1e-4, description="noise level assumed in the metric")
    beta: PositiveFloat = Field(2.6, description="exploration factor of the upper bound")


class HyperbandConfig(SearchConfig):
    max_epochs: PositiveInt | None = Field(
        None, description="epochs of the longest trials; null: the recipe's train.epochs"
    )
    factor: Annotated[int, Field(ge=2)] = Field(3, description="reduction factor per round")
    hyperband_iterations: PositiveInt = Field(1, description="times to run the whole Hyperband")
    seed: int | None = Field(None, description="seed of the sampling; null: the recipe's seed")


def ordered_keys(space: dict[str, SpaceEntry]) -> list[str]:
    """The keys with every condition's key before the keys it activates (KerasTuner needs
    a parent declared first); otherwise in the order written."""
    done: list[str] = []
    visiting: list[str] = []

    def visit(key: str) -> None:
        if key in done:
            return
        if key in visiting:
            cycle = " -> ".join([*visiting[visiting.index(key) :], key])
            raise ValueError(f"the conditions (when:) form a cycle: {cycle}")
        visiting.append(key)
        for parent in space[key].when:
            visit(parent)
        visiting.pop()
        done.append(key)

    for key in space:
        visit(key)
    return done


def _check_condition(space: dict[str, SpaceEntry], key: str, parent: str, wanted: Any) -> None:
    if parent == key:
        raise ValueError(f"{key}: when: a key cannot depend on itself")
    if parent not in space:
        raise ValueError(
            f"{key}: when: {parent!r} is not a key of the search space; a condition names "
            f"another searched key, e.g. when: {{{next(iter(space))}: ...}}"
        )
    for value in _as_list(wanted):
        if not space[parent].contains(value):
            raise ValueError(
                f"{key}: when: {parent} never takes the value {value!r}, so {key} would never "
                "be searched"
            )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
