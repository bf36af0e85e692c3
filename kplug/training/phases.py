"""`model.freeze` and `train.phases`: which layers train, for how long, at which rate.

A run without phases is one phase of `train.epochs` with `model.freeze`. Before each
phase every layer is made trainable again, the phase's frozen layers are set
`trainable = False` (a frozen BatchNormalization then runs in inference mode, as Keras
does) and the model is compiled anew, which builds a new optimizer over the phase's
trainable weights at the phase's learning rate (`kplug.training.trainer.Trainer` runs
the phases). The phases share the callbacks, so the epochs, the metrics CSV and the
history continue from one phase to the next.

Patterns are `fnmatch` patterns on layer names (`conv*`, `block[1-4]_*`). A pattern that
names a nested model (a backbone) covers every layer inside it. `base` stands for the
layers the architecture marks as its base in `ctx.state["base_layers"]` (or a layer named
`base`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kplug.errors import RecipeError
from kplug.training.keras_compat import all_layers, child_layers

if TYPE_CHECKING:
    from kplug.context import RunContext

BASE = "base"
BASE_LAYERS_KEY = "base_layers"


@dataclass(frozen=True)
class Phase:
    """One resolved phase: epochs `[first_epoch, last_epoch)` and what trains."""

    index: int
    first_epoch: int
    last_epoch: int
    learning_rate: float | None
    freeze: tuple[str, ...]
    unfreeze: tuple[str, ...]
    freeze_key: str = "model.freeze"  # where `freeze` comes from, for error messages


def plan(ctx: RunContext) -> list[Phase]:
    """The phases of a run: `train.phases`, or one phase of `train.epochs`."""
    train, model = ctx.recipe.train, ctx.recipe.model.options
    default_freeze = tuple(model.freeze) if model is not None else ()
    entries = train.phases or [None]
    out, first = [], 0
    for index, entry in enumerate(entries):
        epochs = train.epochs if entry is None else entry.epochs
        own = entry is not None and entry.freeze is not None
        freeze = tuple(entry.freeze) if own else default_freeze
        out.append(
            Phase(
                index=index,
                first_epoch=first,
                last_epoch=first + epochs,
                learning_rate=None if entry is None else entry.learning_rate,
                freeze=freeze,
                unfreeze=() if entry is None else tuple(entry.unfreeze),
                freeze_key=f"train.phases.{index}.freeze" if own else "model.freeze",
            )
        )
        first += epochs
    return out


def layer_paths(model: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf layer below `model` (one without sublayers) with the names of its
    enclosing layers: `(("base", "block5_conv1"), layer)`."""

    def walk(layer: Any, path: tuple[str, ...]):
        children = child_layers(layer)
        if not children:
            yield path, layer
        for child in children:
            yield from walk(child, (*path, child.name))

    yield from walk(model, ())


def resolve_patterns(patterns: tuple[str, ...], ctx: RunContext, model: Any) -> list[str]:
    """Expand `base` into the layer names the architecture marks as its base."""
    out: list[str] = []
    for pattern in patterns:
        if pattern != BASE:
            out.append(pattern)
            continue
        marked = ctx.state.get(BASE_LAYERS_KEY)
        if marked:
            out.extend(marked)
        elif any(BASE in path for path, _ in layer_paths(model)):
            out.append(BASE)
        else:
            raise RecipeError(
                f"model.freeze: `base`: architecture {ctx.recipe.model.name!r} does not mark "
                "a base; give layer-name patterns instead (e.g. freeze: ['conv*'])."
            )
    return out


def _matches(path: tuple[str, ...], patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for name in path for p in patterns)


def set_trainable(model: Any, phase: Phase, ctx: RunContext) -> dict[str, Any]:
    """Freeze the phase's layers and train the others; returns what the phase trains.

    Raises:
        RecipeError: a pattern that matches no layer (a typo would silently train all).
    """
    freeze = resolve_patterns(phase.freeze, ctx, model)
    unfreeze = resolve_patterns(phase.unfreeze, ctx, model)
    leaves = list(layer_paths(model))
    names = {name for path, _ in leaves for name in path}
    keys = (phase.freeze_key, f"train.phases.{phase.index}.unfreeze")
    for where, patterns in zip(keys, (freeze, unfreeze), strict=True):
        unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]
        if unknown:
            raise RecipeError(
                f"{where}: no layer matches {', '.join(map(repr, unknown))}; this model's "
                f"layers: {', '.join(sorted(names)[:40])}"
            )
    # Every layer by itself: setting `model.trainable = True` on a model whose flag is
    # already True leaves its frozen sublayers frozen.
    for layer in all_layers(model, include_self=True):
        layer.trainable = True
    frozen = []
    for path, layer in leaves:
        if _matches(path, freeze) and not _matches(path, unfreeze):
            layer.trainable = False
            if layer.weights:
                frozen.append("/".join(path))
    trained = ["/".join(path) for path, layer in leaves if layer.trainable and layer.weights]
    return {
        "phase": phase.index,
        "epochs": [phase.first_epoch, phase.last_epoch],
        "learning_rate": phase.learning_rate or ctx.recipe.optimizer.learning_rate,
        "trainable_parameters": sum(_size(w) for w in model.trainable_weights),
        "frozen_parameters": sum(_size(w) for w in model.non_trainable_weights),
        "frozen_layers": frozen,
        "trained_layers": trained,
    }


def needed(ctx: RunContext) -> bool:
    """Whether the run freezes anything or has phases (else training is left as it was)."""
    options = ctx.recipe.model.options
    return bool(ctx.recipe.train.phases or (options is not None and options.freeze))


def _size(weight: Any) -> int:
    size = 1
    for dim in weight.shape:
        size *= int(dim)
    return size
