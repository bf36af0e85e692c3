"""`model.init_from`: start a model from the weights of a saved model or an earlier run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kplug.errors import KplugError

log = logging.getLogger("kplug")


def resolve_init_path(value: str) -> Path:
    """A `.keras` file, or a run directory holding `model.keras`."""
    path = Path(value).expanduser()
    if path.is_dir():
        candidate = path / "model.keras"
        if not candidate.is_file():
            raise KplugError(
                f"model.init_from: {path} has no model.keras; give a finished run directory "
                "(the one `kplug run` printed) or a .keras file."
            )
        return candidate
    if not path.is_file():
        raise KplugError(
            f"model.init_from: {path} does not exist; give a .keras file or a run directory."
        )
    return path


def initialize_from(model: Any, value: str, *, strict: bool = False,
                    trust: bool = False) -> dict[str, Any]:  # fmt: skip
    """Copy weights from a saved model into `model`, layer by layer.

    Layers are matched by name (nested models included) and copied when every weight has
    the same shape; others keep their fresh initialization (a new head for new classes).

    Returns:
        `{"source", "loaded": [...], "skipped": {name: reason}}`, also logged.
    Raises:
        KplugError: nothing matched, or `strict` and something did not.
    """
    from kplug.models import load_model

    path = resolve_init_path(value)
    source = load_model(path, trust=trust, compile=False)
    source_layers = {layer.name: layer for layer in _layers(source) if layer.weights}
    loaded, skipped = [], {}
    for layer in _layers(model):
        if not layer.weights:
            continue
        other = source_layers.get(layer.name)
        if other is None:
            skipped[layer.name] = "not in the source model"
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        other_shapes = [tuple(w.shape) for w in other.weights]
        if shapes != other_shapes:
            skipped[layer.name] = f"shapes differ: {other_shapes} -> {shapes}"
            continue
        layer.set_weights(other.get_weights())
        loaded.append(layer.name)
    if not loaded:
        raise KplugError(
            f"model.init_from: no layer of {path} matches this model by name and shape; "
            "is it a run of the same architecture?"
        )
    if strict and skipped:
        listing = "; ".join(f"{k} ({v})" for k, v in skipped.items())
        raise KplugError(f"model.init_from (init_strict): layers not initialized: {listing}")
    log.info("init_from %s: %d layers loaded, %d kept fresh%s", path, len(loaded), len(skipped),
             f" ({', '.join(skipped)})" if skipped else "")  # fmt: skip
    return {"source": str(path), "loaded": loaded, "skipped": skipped}


def _layers(model: Any) -> list[Any]:
    """Every layer below a model, nested models flattened, the model itself excluded."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)]
