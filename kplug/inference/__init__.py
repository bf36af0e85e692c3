"""`inference.json`: what a program needs, besides `model.keras`, to use a trained model.

Written into every run directory when the model is saved (see docs/recipes.md, "The run
directory"), read back by `kplug predict` and `kplug evaluate`. The fields:

- `format`: 1.
- `model`: the model file, `model.keras` (loads with plain `keras.saving.load_model`).
- `dataset`, `objective`: the recipe's component names.
- `class_names`: the class of each output index (null without classes).
- `data`: the dataset's example form before the objective adapted it: `input_shape`,
  `input_dtype`, `text_form` (text: `strings`, `ragged`, `padded` or `pairs`),
  `vocabulary_size`.
- `model_inputs`: each model input's name, shape (batch axis left out, null where any
  length goes) and dtype.
- `sequence_length`: tokens per example the model was trained on (text models), or null.
- `preprocessing`: what the dataset did to each raw input (e.g. `{"scale": 0.00392}` for
  pixels divided by 255, `image_size`, `color_mode`), as the dataset reported it.

Plugins add their own entries through the `inference_fields` hook (the text plugin's
`tokenizer`: the saved tokenizer's `folder`, component `name` and `file`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kplug.errors import RunError

log = logging.getLogger("kplug")
FILE = "inference.json"
FORMAT = 1


def inference_metadata(recipe: Any, data_spec: Any, model_spec: Any, model: Any) -> dict[str, Any]:
    """The `inference.json` of a run: `data_spec` is the dataset's spec, `model_spec` the
    objective's (after `adapt`)."""
    extras = data_spec.extras
    text_form = extras.get("text_form")
    return {
        "format": FORMAT,
        "model": "model.keras",
        "dataset": recipe.data.name,
        "objective": recipe.objective.name,
        "class_names": data_spec.class_names,
        "data": {
            "input_shape": _list(data_spec.input_shape),
            "input_dtype": data_spec.input_dtype,
            "text_form": text_form,
            "vocabulary_size": data_spec.vocabulary_size,
        },
        "model_inputs": model_inputs(model),
        "sequence_length": _sequence_length(model_spec) if text_form else None,
        "preprocessing": _jsonable(extras.get("preprocessing", {})),
    }


@contextlib.contextmanager
def without_compile_config(model: Any) -> Iterator[None]:
    """Save `model` without its compile configuration when its class comes from Keras or
    another library rather than a plugin, so that `keras.saving.load_model` rebuilds it in
    a process without kplug: the compile configuration names kplug's schedule, losses and
    metrics, which only a process that imported kplug can rebuild. The weights (the
    optimizer's variables too) are saved as before; training continues from
    `checkpoints/`, and `kplug evaluate` compiles the model with the run's own loss and
    metrics. A plugin's own model class (the GAN) needs its plugin to load anyway and
    keeps its compile configuration."""
    from kplug.plugins import plugin_manager

    package = type(model).__module__.split(".")[0]
    plugins = {getattr(p, "__name__", type(p).__module__).split(".")[0]
               for p in plugin_manager().get_plugins()}  # fmt: skip
    if package in {"kplug", *plugins} or not getattr(model, "compiled", False):
        yield
        return
    model.compiled = False  # Model.get_compile_config() returns None
    try:
        yield
    finally:
        model.compiled = True


def model_inputs(model: Any) -> dict[str, Any]:
    """Name -> {shape, dtype} of each input of a Keras model; a subclassed model that was
    never called on symbolic inputs (the GAN) has none: its generator's, if it has one."""
    model = getattr(model, "generator", model)
    inputs = getattr(model, "inputs", None) or []
    inputs = inputs if isinstance(inputs, list) else [inputs]
    return {
        getattr(t, "name", f"input_{i}").split(":")[0]: {
            "shape": _list(tuple(t.shape)[1:]),
            "dtype": str(getattr(t, "dtype", "float32")),
        }
        for i, t in enumerate(inputs)
    }


def read_inference(run_dir: Path) -> dict[str, Any]:
    """A run's `inference.json`; a RunError naming the fix when it has none."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        raise RunError(
            f"{run_dir} has no {FILE}: it was trained by a kplug without it, or it did not "
            "finish. Run the recipe again (kplug run RECIPE) to get a usable run directory."
        )
    return json.loads(path.read_text("utf-8"))


def finished_run(value: str | Path, command: str) -> Path:
    """The run directory `value` names (a run, or runs/<name>: its newest completed run),
    checked to have finished with a model; a RunError with the fix otherwise."""
    from kplug.rundir import latest_completed_run

    path = Path(value).expanduser()
    if not path.is_dir():
        raise RunError(
            f"{command}: {path} is not a directory; give a run directory that "
            "`kplug run` printed, or runs/<name> for its newest run."
        )
    if not (path / "manifest.json").is_file():
        newest = latest_completed_run(path)
        if newest is None:
            raise RunError(
                f"{command}: {path} is not a kplug run directory and holds no "
                "completed run; give the directory `kplug run` printed."
            )
        path = newest
    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    status = manifest.get("status")
    if status != "completed" or not (path / "model.keras").is_file():
        raise RunError(
            f"{command}: the run {path} has not finished (status {status!r}"
            f"{', no model.keras' if not (path / 'model.keras').is_file() else ''}); wait for "
            "it to end, continue it with `kplug resume RUN_DIR`, or give a completed run."
        )
    return path


def _sequence_length(spec: Any) -> int | None:
    shape = spec.input_shape or ()
    return shape[0] if len(shape) == 1 and isinstance(shape[0], int) else None


def _list(shape: Any) -> list | None:
    return None if shape is None else [None if d is None else int(d) for d in shape]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: getattr(v, "tolist", lambda: str(v))()))
