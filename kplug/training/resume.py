"""Resuming a run: which recipe changes are allowed, which checkpoint to continue from,
and the `fit` calls that finish a partly trained epoch and the rest.

No TensorFlow or Keras here.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from typing import Any

from kplug.errors import RunError
from kplug.recipe import Recipe
from kplug.rundir import RunDirectory
from kplug.training.checkpoints import (
    Checkpoint,
    checkpoint_steps,
    folder_of,
    newest_valid,
    set_aside_newer_checkpoints,
    verify,
)

# Recipe keys whose change would make the checkpoint describe another training: the
# model and its variables, the data and its order, the objective, or the optimizer's
# variables. Anything else (epochs, learning rate and schedule, logging, export,
# compression, callbacks, strategy) may change on resume.
FROZEN = (
    "seed",
    "backend",
    "data",
    "model",
    "objective",
    "optimizer.name",
    "train.steps_per_epoch",
    "train.mixed_precision",
    "train.gradient_accumulation_steps",
)


def open_for_resume(
    path: str | os.PathLike, recipe: Recipe, *, from_step: int | None = None
) -> tuple[RunDirectory, Checkpoint]:
    """The run directory to continue, locked for this process, and its checkpoint: the
    newest valid one, or the one of global step `from_step`. Checks that `recipe` changes
    nothing frozen. Raises `RunError` (and writes nothing) otherwise."""
    directory = RunDirectory.open(path)
    manifest = directory.manifest()  # a damaged one is an error before anything else
    saved = _saved_recipe(directory)
    refused = [d for d in differences(saved, recipe.resolved()) if _frozen(d[0])]
    if refused:
        listing = "\n".join(f"  - {key}: {_show(old)} -> {_show(new)}" for key, old, new in refused)
        raise RunError(
            f"cannot resume {directory}: the recipe differs from the one the run was started "
            f"with in what its checkpoints depend on:\n{listing}\n"
            "Resume with the run's own recipe (`kplug resume RUN_DIR`, overrides for epochs, "
            "learning rate, logging or export only), or start a new run."
        )
    if from_step is None:
        checkpoint = newest_valid(directory.path)
    else:
        checkpoint = at_step(directory, from_step)
    if checkpoint is None:
        raise RunError(
            f"cannot resume {directory}: it has no valid checkpoint in "
            f"{directory / 'checkpoints'} (train.keep_checkpoints=0, or the run stopped "
            "before its first one); start a new run."
        )
    epochs = recipe.train.epochs
    trained = checkpoint.epoch >= epochs and checkpoint.step_in_epoch == 0
    if trained and manifest.get("status") == "completed":
        raise RunError(
            f"cannot resume {directory}: it completed, and its newest checkpoint "
            f"({checkpoint.path.name}) is at the end of epoch {checkpoint.epoch} with "
            f"train.epochs={epochs}; nothing is left to train. Raise train.epochs to train "
            "longer."
        )
    directory.lock()  # before anything is written; refused while another process has it
    if from_step is not None:
        set_aside_newer_checkpoints(directory.path, from_step)
    return directory, checkpoint


def at_step(directory: RunDirectory, step: int) -> Checkpoint:
    """The valid checkpoint of global step `step` (`kplug resume --from-step`)."""
    steps = sorted(checkpoint_steps(directory.path))
    meta_path = folder_of(directory.path) / f"step-{step:09d}.json"
    if step not in steps:
        raise RunError(
            f"cannot resume {directory} from step {step}: there is no checkpoint of that step; "
            f"its checkpoints are at steps {', '.join(map(str, steps)) or '(none)'}."
        )
    checkpoint, problem = verify(meta_path)
    if checkpoint is None:
        raise RunError(f"cannot resume {directory} from step {step}: {problem}.")
    return checkpoint


def differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """`(dotted key, old value, new value)` for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(differences(old.get(key, _MISSING), new.get(key, _MISSING), path))
        return out
    return [] if old == new else [(prefix, old, new)]


def fit_remaining(
    checkpoint: Checkpoint | None,
    fit_epochs: Callable[..., dict],
    *,
    epochs: int,
    model: Any,
    first_epoch: int = 0,
) -> dict[str, list[float]]:
    """Train epochs `first_epoch` to `epochs`, continuing from `checkpoint` (which falls
    in that range) at its exact step.

    A partly trained epoch gets its own `fit` call for its remaining batches, with the
    data stream starting at the checkpoint's position; the later epochs get a normal one.

    Args:
        fit_epochs: `fit_epochs(initial_epoch=, epochs=, steps_per_epoch=None,
            start_step=None)` runs the strategy's fit and returns its history.
        model: the Keras model (its `stop_training` ends training after the first call).
    Returns the history of the whole run, the checkpoint's completed epochs included.
    """
    if checkpoint is None:
        return fit_epochs(initial_epoch=first_epoch, epochs=epochs)
    history = checkpoint.history
    epoch, done = checkpoint.epoch, checkpoint.step_in_epoch
    if done:
        steps = checkpoint.steps_per_epoch
        part = fit_epochs(initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=steps - done,
                          start_step=epoch * steps + done)  # fmt: skip
        _extend(history, part)
        epoch += 1
        if getattr(model, "stop_training", False):
            return history
    if epoch < epochs:
        _extend(history, fit_epochs(initial_epoch=epoch, epochs=epochs))
    return history


def history_csv(history: dict[str, list[float]]) -> str:
    """`metrics.csv` as Keras' CSVLogger writes it, for the epochs of `history`."""
    keys = sorted(history)
    if not keys:
        return ""  # no epoch yet: CSVLogger writes the header
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(max((len(v) for v in history.values()), default=0)):
        writer.writerow([epoch, *(_at(history[k], epoch) for k in keys)])
    return out.getvalue()


def _extend(history: dict[str, list[float]], more: dict[str, list[float]]) -> None:
    for key, values in more.items():
        history.setdefault(key, []).extend(values)


def _at(values: list[float], index: int) -> Any:
    return values[index] if index < len(values) else "NA"


def _saved_recipe(directory: RunDirectory) -> dict[str, Any]:
    from kplug import yamlio

    path = directory / "recipe.resolved.yaml"
    try:
        return yamlio.parse(path.read_text("utf-8"), str(path))[0] or {}
    except OSError as error:
        raise RunError(f"cannot resume {directory}: {path} is unreadable ({error})") from None


def _frozen(key: str) -> bool:
    return any(key == f or key.startswith(f + ".") for f in FROZEN)


def _show(value: Any) -> str:
    return "(absent)" if value is _MISSING else repr(value)


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()
