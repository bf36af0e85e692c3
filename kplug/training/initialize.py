"""`model.init_from`: start a model from the weights of a saved model or an earlier run."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from kplug.errors import KplugError
from kplug.training.keras_compat import all_layers

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


def latest_completed_run(parent: Path) -> Path | None:
    """The newest `parent/<timestamp>/` whose manifest says completed and has a model."""
    runs = []
    for child in parent.iterdir():
        manifest = child / "manifest.json"
        if not (manifest.is_file() and (child / "model.keras").is_file()):
            continue
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(manifest.read_text("utf-8"))
            if data.get("status") == "completed":
                runs.append((data.get("finished", ""), child.name, child))
    return max(runs)[2] if runs else None


def initialize_from(model: Any, value: str, *, strict: bool = False, trust: bool = False,
                    exclude: list[str] = ()) -> dict[str, Any]:  # fmt: skip
    """Copy weights from a saved model into `model`, layer by layer.

    Layers are matched by name (nested models included) and copied when every weight has
    the same shape; others keep their fresh initialization (a new head for new classes),
    and so do layers whose name matches an `exclude` pattern (fnmatch: `logits`, `dense*`).

    Returns:
        `{"source", "loaded": [...], "skipped": {name: reason}}`, also logged.
    Raises:
        KplugError: nothing matched, or `strict` and something did not.
    """
    from kplug.models import load_model

    path = resolve_init_path(value)
    source = load_model(path, trust=trust, compile=False)
    source_layers = {layer.name: layer for layer in _layers(source) if layer.weights}
    # Sublayer names repeat across blocks (every keras-hub transformer layer has a `query`);
    # by name they would all get the last block's weights.
    repeated = Counter(layer.name for layer in _layers(source) if layer.weights)
    copied: set[int] = set()  # the variables set so far, with an enclosing layer
    loaded, skipped, excluded = [], {}, set()
    for layer in _layers(model):
        if not layer.weights or all(id(w) in copied for w in layer.weights):
            continue
        if any(fnmatch.fnmatchcase(layer.name, pattern) for pattern in exclude):
            skipped[layer.name] = "excluded (model.init_exclude)"
            excluded.add(layer.name)
            continue
        other = source_layers.get(layer.name)
        if other is None:
            skipped[layer.name] = "not in the source model"
            continue
        if repeated[layer.name] > 1:
            skipped[layer.name] = "several layers of the source have this name"
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        other_shapes = [tuple(w.shape) for w in other.weights]
        if shapes != other_shapes:
            skipped[layer.name] = f"shapes differ: {other_shapes} -> {shapes}"
            continue
        layer.set_weights(other.get_weights())
        copied.update(id(w) for w in layer.weights)
        loaded.append(layer.name)
    if not loaded:
        raise KplugError(
            f"model.init_from: no layer of {path} matches this model by name and shape; "
            "is it a run of the same architecture?"
        )
    missed = {k: v for k, v in skipped.items() if k not in excluded}
    if strict and missed:
        listing = "; ".join(f"{k} ({v})" for k, v in missed.items())
        raise KplugError(f"model.init_from (init_strict): layers not initialized: {listing}")
    log.info("init_from %s: %d layers loaded, %d kept fresh%s", path, len(loaded), len(skipped),
             f" ({', '.join(skipped)})" if skipped else "")  # fmt: skip
    return {"source": str(path), "loaded": loaded, "skipped": skipped}


def _layers(model: Any) -> list[Any]:
    """Every layer below a model, nested models flattened, the model itself excluded."""
    return list(all_layers(model))
