"""Saving Keras models atomically and loading them safely."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kplug.errors import KplugError

if TYPE_CHECKING:
    from kplug.rundir import RunDirectory

SAFE_FORMATS = (".keras",)


def custom_objects() -> dict[str, Any]:
    """Every custom Keras class the loaded plugins declare (the `keras_objects` hook)."""
    import kplug.training.schedules  # noqa: F401  (registers WarmupDecay)
    from kplug.plugins import plugin_manager

    objects: dict[str, Any] = {}
    for result in plugin_manager().hook.keras_objects():
        objects.update(result or {})
    return objects


def load_model(path: str | os.PathLike, *, trust: bool = False, compile: bool = True) -> Any:
    """Load a `.keras` model with `safe_mode=True` unless `trust` (`--trust-model`).

    Raises:
        KplugError: a missing file, an unsafe format or a model that needs unsafe
            deserialization (Lambda layers), with the fix.
    """
    import keras

    path = Path(path)
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if not path.is_file():
        raise KplugError(f"model file not found: {path}; give a .keras file or a run directory.")
    if path.suffix not in SAFE_FORMATS and not trust:
        raise KplugError(
            f"{path}: only .keras files are loaded by default; legacy formats (.h5) can run "
            "code when loaded. Convert it, or pass --trust-model if you trust its source."
        )
    try:
        return keras.saving.load_model(
            path, custom_objects=custom_objects(), compile=compile, safe_mode=not trust
        )
    except ValueError as error:
        if "safe_mode" in str(error) or "Lambda" in str(error):
            raise KplugError(
                f"{path} needs unsafe deserialization (it holds a Lambda layer or Python "
                "code). Pass --trust-model only if you trust where it came from."
            ) from None
        raise KplugError(f"{path}: not a loadable Keras model: {error}") from None
    except Exception as error:
        # A damaged or foreign file (a zip without config.json, truncated weights) fails
        # deep inside Keras with any error type; it is still the user's file at fault.
        raise KplugError(
            f"{path}: not a loadable Keras model ({type(error).__name__}: {error}); give a "
            ".keras file saved by Keras 3, a run directory or runs/<name>."
        ) from None


def save_model(model: Any, directory: RunDirectory, name: str) -> Path:
    """Save a Keras model atomically (a temporary `.keras` file renamed into place)."""
    from kplug.inference import without_compile_config

    temporary = directory.temporary_path(name)
    try:
        with without_compile_config(model):
            model.save(temporary)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return directory.commit(temporary, name)
