"""`model.init_from`: start a model from the weights of a saved model or an earlier run."""

from __future__ import annotations

import fnmatch
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kplug.errors import KplugError
from kplug.rundir import latest_completed_run
from kplug.training.keras_compat import child_layers, made_up_name_base

log = logging.getLogger("kplug")


def resolve_init_path(value: str, *, key: str = "model.init_from") -> Path:
    """The model file a recipe points at: a `.keras` file, a run directory holding
    `model.keras`, or `runs/<name>`, meaning the newest completed run of that name."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise KplugError(
            f"{key}: {path} does not exist; give a .keras file, a run directory or "
            "runs/<name> (the newest completed run of that name)."
        )
    if (path / "model.keras").is_file():
        return path / "model.keras"
    newest = latest_completed_run(path)
    if newest is None:
        raise KplugError(
            f"{key}: {path} has no model.keras and no completed run inside; run the recipe "
            "that trains it first, or give a .keras file."
        )
    return newest / "model.keras"


def initialize_from(model: Any, value: str, *, strict: bool = False, trust: bool = False,
                    exclude: list[str] = (), training: bool = True) -> dict[str, Any]:  # fmt: skip
    """Copy weights from a saved model into `model`.

    A model of the identical architecture (the same weights, shapes and layer types in
    the same order) is copied weight by weight in the model's own order, whatever its
    layers are called. Otherwise each weight is matched by its full path in the model
    (`bidirectional/backward_lstm/lstm_cell/kernel`, nested models included), never by a
    layer name alone, and a layer is copied when every one of its weights is found with
    the same shape; others keep their fresh initialization (a new head for new classes),
    and so do layers whose name matches an `exclude` pattern (fnmatch: `logits`, `dense*`).
    A path that two weights share is refused rather than guessed.

    Args:
        training: False when nothing is trained afterwards (`train.epochs=0`): then a
            layer left fresh, excluded or not, is an error naming it.
    Returns:
        `{"source", "matched_by", "loaded": [layer paths], "skipped": {path: reason}}`,
        also logged.
    Raises:
        KplugError: nothing matched, an ambiguous path, `strict` and something did not
            match, or a layer left fresh without training.
    """
    from kplug.training.models import load_model

    path = resolve_init_path(value)
    source = load_model(path, trust=trust, compile=False)
    targets, sources = weight_entries(model), weight_entries(source)
    identical = [_signature(e) for e in targets] == [_signature(e) for e in sources]
    if identical:
        pairs = {id(t.variable): s for t, s in zip(targets, sources, strict=True)}
    else:
        pairs = _pairs_by_path(targets, sources, path)
    loaded, skipped, excluded = _copy_by_layer(targets, pairs, exclude)
    if not loaded:
        raise KplugError(
            f"model.init_from: no layer of {path} matches this model by path and shape; "
            "is it a run of the same architecture?"
        )
    missed = {k: v for k, v in skipped.items() if k not in excluded}
    if strict and missed:
        listing = "; ".join(f"{k} ({v})" for k, v in missed.items())
        raise KplugError(f"model.init_from (init_strict): layers not initialized: {listing}")
    if not training and skipped:
        listing = "; ".join(f"{k} ({v})" for k, v in skipped.items())
        raise KplugError(
            f"model.init_from with train.epochs=0: nothing is trained, so every layer must "
            f"come from {path}, but these would keep their fresh random weights: {listing}. "
            "Remove them from model.init_exclude, init from a model that has them, or train "
            "(train.epochs > 0)."
        )
    how = "the model's weight order" if identical else "weight paths"
    log.info("init_from %s (by %s): %d layers loaded, %d kept fresh%s", path, how,
             len(loaded), len(skipped),
             f" ({', '.join(skipped)})" if skipped else "")  # fmt: skip
    return {"source": str(path), "matched_by": "order" if identical else "path",
            "loaded": loaded, "skipped": skipped}  # fmt: skip


@dataclass(frozen=True)
class WeightEntry:
    """One weight of a model: its path below the model, the names and types of the layers
    that hold it (outermost first) and the variable."""

    path: str
    layers: tuple[str, ...]
    layer_types: tuple[str, ...]
    variable: Any
    layer_names: tuple[str, ...] = ()  # as Keras names them (init_exclude matches these)

    @property
    def layer_path(self) -> str:
        return "/".join(self.layers) or "(model)"


def weight_entries(model: Any) -> list[WeightEntry]:
    """Every weight of `model` once, with its full path, in a fixed walk order (children
    before their parent; a layer used twice is listed where it is met first).

    A name Keras made up (`dense_3`: the class name and a counter of this process) is not
    the layer's identity: it becomes the class name and its rank among the auto-named
    siblings of that class (`dense`, `dense#1`), so that a model built after others in one
    process still matches its saved twin."""
    out: list[WeightEntry] = []
    seen: set[int] = set()

    def walk(layer: Any, names: tuple[str, ...], types: tuple[str, ...], real: tuple) -> None:
        ranks: dict[str, int] = {}
        for child in child_layers(layer):
            name = _stable_name(child, ranks)
            walk(child, (*names, name), (*types, type(child).__name__), (*real, child.name))
        counts: dict[str, int] = {}
        for variable in layer.weights:
            if id(variable) in seen:
                continue  # a sublayer's (already listed) or a shared layer's
            seen.add(id(variable))
            n = counts[variable.name] = counts.get(variable.name, 0) + 1
            name = variable.name if n == 1 else f"{variable.name}#{n - 1}"
            out.append(WeightEntry("/".join((*names, name)), names, types, variable, real))

    walk(model, (), (), ())
    return out


def _stable_name(layer: Any, ranks: dict[str, int]) -> str:
    base = made_up_name_base(layer)
    if not re.fullmatch(rf"{re.escape(base)}(_\d+)?", layer.name):
        return layer.name
    rank = ranks[base] = ranks.get(base, -1) + 1
    return base if rank == 0 else f"{base}#{rank}"


def _signature(entry: WeightEntry) -> tuple:
    name = entry.path.rsplit("/", 1)[-1]
    return tuple(entry.variable.shape), name, entry.layer_types


def _pairs_by_path(targets: list[WeightEntry], sources: list[WeightEntry],
                   path: Path) -> dict[int, WeightEntry]:  # fmt: skip
    by_path: dict[str, list[WeightEntry]] = {}
    for entry in sources:
        by_path.setdefault(entry.path, []).append(entry)
    target_count: dict[str, int] = {}
    for entry in targets:
        target_count[entry.path] = target_count.get(entry.path, 0) + 1
    ambiguous = sorted(
        p for p in target_count if p in by_path and (target_count[p] > 1 or len(by_path[p]) > 1)
    )
    if ambiguous:
        raise KplugError(
            f"model.init_from: {path} and this model differ in architecture, and "
            f"{len(ambiguous)} weight path(s) are held by more than one weight (sibling "
            f"layers with the same name), e.g. {ambiguous[0]}; kplug will not guess which "
            "weight goes where. Give those layers distinct names, or init from a model of "
            "the identical architecture (matched in the model's own weight order)."
        )
    return {id(t.variable): by_path[t.path][0] for t in targets if t.path in by_path}


def _copy_by_layer(targets: list[WeightEntry], pairs: dict[int, WeightEntry],
                   exclude: list[str]):  # fmt: skip
    """Assign every layer whose weights all have a source of the same shape."""
    layers: dict[str, list[WeightEntry]] = {}
    for entry in targets:
        layers.setdefault(entry.layer_path, []).append(entry)
    loaded, skipped, excluded = [], {}, set()
    for layer_path, entries in layers.items():
        names = entries[0].layer_names
        if any(fnmatch.fnmatchcase(n, p) for n in names for p in exclude):
            skipped[layer_path] = "excluded (model.init_exclude)"
            excluded.add(layer_path)
            continue
        found = [pairs.get(id(e.variable)) for e in entries]
        if any(f is None for f in found):
            missing = next(e.path for e, f in zip(entries, found, strict=True) if f is None)
            skipped[layer_path] = f"not in the source model ({missing})"
            continue
        shapes = [tuple(e.variable.shape) for e in entries]
        other_shapes = [tuple(f.variable.shape) for f in found]
        if shapes != other_shapes:
            skipped[layer_path] = f"shapes differ: {other_shapes} -> {shapes}"
            continue
        for entry, other in zip(entries, found, strict=True):
            entry.variable.assign(other.variable.numpy())
        loaded.append(layer_path)
    return loaded, skipped, excluded
