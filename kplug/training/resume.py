"""Resuming a run: which recipe changes are allowed, which checkpoint to continue from,
and the run directory reopened (the fit that continues at the checkpoint's step is
`Trainer.fit_epochs`).

No TensorFlow or Keras here.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import platform
from typing import TYPE_CHECKING, Any

from kplug.errors import RunError
from kplug.recipe import Recipe
from kplug.rundir import RunDirectory, is_storage_error, utc_now
from kplug.training.checkpoints import (
    Checkpoint,
    checkpoint_steps,
    folder_of,
    newest_valid,
    set_aside_newer_checkpoints,
    storage_error,
    verify,
)

if TYPE_CHECKING:
    from kplug.context import RunContext

log = logging.getLogger("kplug")

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


def resume_run(
    ctx: RunContext, path: str | os.PathLike, from_step: int | None = None
) -> RunDirectory:
    """Reopen the run at `path` for `ctx` (`kplug resume`): sets `ctx.resume_from`,
    rewrites metrics.csv from the checkpoint's history, records the resume in the
    manifest. `from_step`: the checkpoint of that global step rather than
    the newest (`kplug resume --from-step`)."""
    if not ctx.strategy.is_chief or ctx.strategy.training_loop != "fit":
        raise RunError(
            f"--resume works with strategies that train with Keras fit in one process "
            f"(this one: {ctx.recipe.strategy.name}); a multi-worker run resumes from its "
            f"per-epoch backup as its strategy says: kplug describe {ctx.recipe.strategy.name}"
        )
    directory, ctx.resume_from = open_for_resume(path, ctx.recipe, from_step=from_step)
    checkpoint = ctx.resume_from
    try:
        directory.write_text("metrics.csv", history_csv(checkpoint.history))
        manifest = directory.manifest()
        resumes = [*manifest.get("resumed", []), {
            "at": utc_now(), "command": ctx.argv, "checkpoint": checkpoint.path.name,
            "epoch": checkpoint.epoch, "step_in_epoch": checkpoint.step_in_epoch,
            "global_step": checkpoint.global_step, "pid": os.getpid(),
        }]  # fmt: skip
        directory.update_manifest(status="running", resumed=resumes, error=None, finished=None,
                                  pid=os.getpid(), host=platform.node())  # fmt: skip
    except BaseException as error:
        directory.unlock()
        if isinstance(error, OSError) and is_storage_error(error, directory):
            raise storage_error(error, directory) from None
        raise
    log.info("resuming %s from %s", directory, checkpoint.path.name)
    return directory


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


def history_csv(history: dict[str, list[float]]) -> str:
    """`metrics.csv` as Keras' CSVLogger writes it, for the epochs of `history`."""
    keys = sorted(history)
    if not keys:
        return ""  # no epoch yet: CSVLogger writes the header
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(max((len(v) for v in history.values()), default=0)):
        writer.writerow([epoch + 1, *(_at(history[k], epoch) for k in keys)])
    return out.getvalue()


def _at(values: list[float], index: int) -> Any:
    return values[index] if index < len(values) else "NA"


def _saved_recipe(directory: RunDirectory) -> dict[str, Any]:
    from kplug.recipe import yamlio

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
