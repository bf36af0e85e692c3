"""Resuming a run: which recipe changes are allowed, which checkpoint to continue from,
and the `fit` calls that finish a partly trained epoch and the rest.

No TensorFlow or Keras here.
"""

from __future__ import annotations

import csv
import io
import os
import platform
from collections.abc import Callable
from typing import Any

from kplug.errors import RunError
from kplug.recipe import Recipe
from kplug.rundir import RunDirectory
from kplug.training.checkpoints import Checkpoint, newest_valid

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


def open_for_resume(path: str | os.PathLike, recipe: Recipe) -> tuple[RunDirectory, Checkpoint]:
    """The run directory to continue and its newest valid checkpoint, after checking that
    `recipe` changes nothing frozen. Raises `RunError` (and writes nothing) otherwise."""
    directory = RunDirectory.open(path)
    _check_not_running(directory)
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
    checkpoint = newest_valid(directory.path)
    if checkpoint is None:
        raise RunError(
            f"cannot resume {directory}: it has no valid checkpoint in "
            f"{directory / 'checkpoints'} (train.keep_checkpoints=0, or the run stopped "
            "before its first one); start a new run."
        )
    epochs = recipe.train.epochs
    if checkpoint.epoch >= epochs and checkpoint.step_in_epoch == 0:
        raise RunError(
            f"cannot resume {directory}: its newest checkpoint ({checkpoint.path.name}) is at "
            f"the end of epoch {checkpoint.epoch} and the recipe has train.epochs={epochs}; "
            "nothing is left to train. Raise train.epochs to train longer."
        )
    return directory, checkpoint


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


def _check_not_running(directory: RunDirectory) -> None:
    """Two processes must not train into one run directory."""
    manifest = directory.manifest()
    pid = manifest.get("pid")
    if manifest.get("status") != "running" or manifest.get("host") != platform.node() or not pid:
        return
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return  # it died without a word (SIGKILL, a crash): resumable
    except PermissionError:
        pass  # alive, someone else's
    raise RunError(
        f"cannot resume {directory}: its manifest says it is running as process {pid} on "
        "this machine, and that process is alive. Stop it first (SIGTERM saves a checkpoint)."
    )


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
