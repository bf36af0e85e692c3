"""`StepCheckpoint`: the Keras callback that saves and restores the exact training state."""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kplug.errors import RunError, RunInterrupted
from kplug.training.checkpoints import (
    Checkpoint,
    is_sane_loss,
    mark_not_sane,
    write_checkpoint,
)
from kplug.training.step_losses import StepLosses

log = logging.getLogger("kplug")

GROUPS = ("model", "optimizer", "metrics")


class StepCheckpoint(keras.callbacks.Callback):
    """Saves the training state every `every` steps and at each epoch end; restores it.

    The state is every variable of the model (weights, non-trainable state, random seed
    generators), the optimizer (iterations, slots, loss scale) and the compiled metrics
    (the running means of a partly trained epoch), Python's and NumPy's random state,
    the epoch, the step in it and the global step (the position of the data), and the
    history of the completed epochs. With `resume_from`, `on_train_begin` restores it and
    the first epoch's metrics continue from their saved state.

    SIGTERM and SIGINT (inside `stop_on_signals()`) save a checkpoint at the next step
    boundary and raise `kplug.RunInterrupted`.

    No training step waits for it: it counts steps and saves at the start of the next step
    (`on_train_batch_begin`, where the state is the one after the step before and Keras has
    no logs to read), and takes the loss a checkpoint records from `losses` (recorded by
    `StopOnNonFinite` off the training thread), waiting for it only when it saves. Its
    batch-end hook only acts on TensorFlow (see `on_train_batch_end`), so it is `async_safe`.

    Args:
        directory: the run directory (checkpoints go to its `checkpoints/`).
        steps_per_epoch: batches per epoch; None (unknown): epoch-end checkpoints only.
        every: also save every this many global steps; None: epoch ends only.
        keep: newest checkpoints kept; 0: save none.
        resume_from: the checkpoint to continue from, or None for a new run.
        save_initial: also save the state before the first step (step 0), so that a run
            that diverges at once still has a sane checkpoint to go back to.
        losses: the steps' losses (`StopOnNonFinite.losses`); None: a mid-epoch
            checkpoint records no loss.

    Every worker of a multi-worker run saves (the chief into the run, the others into their
    temporary directories): reading the metrics' variables is a collective operation that
    all workers must run together.
    """

    async_safe = True

    def __init__(
        self,
        directory: Path,
        *,
        steps_per_epoch: int | None,
        every: int | None = None,
        keep: int = 2,
        resume_from: Checkpoint | None = None,
        save_initial: bool = False,
        losses: StepLosses | None = None,
    ):
        super().__init__()
        self.losses = losses
        self.directory = Path(directory)
        self.steps_per_epoch = steps_per_epoch
        self.every = every
        self.keep = keep
        self.resume_from = resume_from
        self.write = keep > 0
        self.history: dict[str, list[float]] = resume_from.history if resume_from else {}
        self.epoch = resume_from.epoch if resume_from else 0
        self.step_in_epoch = resume_from.step_in_epoch if resume_from else 0
        self._first_step_in_epoch = self.step_in_epoch  # of this fit's current epoch
        self.signal_number: int | None = None
        self._restored = resume_from is None
        # The first fit of a resumed run may be the rest of a partly trained epoch.
        self._partial_fit = bool(resume_from and resume_from.step_in_epoch)
        self._metrics_pending: list[Any] | None = None
        # The loss of the newest step and the lowest a checkpoint has had: a checkpoint
        # far above it (a divergence, finite for now) is marked not sane.
        self.loss: float | None = None
        self.lowest_loss: float | None = (
            resume_from.meta.get("lowest_loss") if resume_from else None
        )
        self.save_initial = save_initial and resume_from is None
        # The newest checkpoint and its global step, until the loss after it is seen.
        self._newest_saved: tuple[Path, int] | None = None

    @property
    def global_step(self) -> int:
        return self.epoch * (self.steps_per_epoch or 0) + self.step_in_epoch

    # --- Keras hooks ----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        steps = (self.params or {}).get("steps")
        if steps and not self._partial_fit:
            self._check_steps(steps)
            self.steps_per_epoch = steps  # the strategy's own count (a dropped remainder)
        if not self._restored or (self.save_initial and self.global_step == 0):
            optimizer = self.model.optimizer
            if optimizer is not None and not optimizer.built:
                # Keras builds it when it traces the first step; its state is needed now.
                optimizer.build(self.model.trainable_variables)
        if not self._restored:
            self._restore(self.resume_from)
            self._restored = True
        elif self.save_initial and self.global_step == 0:
            self.save()
            self.save_initial = False

    def on_train_end(self, logs=None):
        self._partial_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        resumed = self.resume_from is not None and epoch == self.resume_from.epoch
        self.epoch = epoch
        self.step_in_epoch = self.resume_from.step_in_epoch if resumed else 0
        self._first_step_in_epoch = self.step_in_epoch
        if self._metrics_pending is not None and len(self.model.metrics_variables) == len(
            self._metrics_pending
        ):
            # Keras resets the metrics just before this hook: a partly trained epoch's
            # running means continue from where they were saved.
            _assign(self.model.metrics_variables, self._metrics_pending, "metrics")
            self._metrics_pending = None

    def on_train_batch_begin(self, batch, logs=None):
        # `batch` steps of this fit's epoch are done; the state is the one after the last.
        self.step_in_epoch = self._first_step_in_epoch + batch
        self._judge_newest_saved()
        if batch == 0:  # the state of the epoch's start, saved at the end of the one before
            return
        if self.signal_number is not None:
            if not self.steps_per_epoch:  # no exact data position to resume at
                self._stop(saved=False)
            self._stop(saved=self.save() is not None)
        if self.every and self.global_step % self.every == 0:
            self.save()

    def on_train_batch_end(self, batch, logs=None):
        # Only TensorFlow without a tf.distribute strategy leaves metrics pending here, and
        # its Keras calls batch hooks on the training thread (it is not thread-safe); the
        # other backends build the metrics before `on_epoch_begin`, which restores them.
        if self._metrics_pending is not None:
            self._add_saved_metrics()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(_number(value))
        self.loss = _number((logs or {}).get("loss", self.loss))
        self._judge_newest_saved()
        self.epoch, self.step_in_epoch = epoch + 1, 0
        self.save()
        if self.signal_number is not None:
            self._stop(saved=self.write)

    # --- Saving and restoring -------------------------------------------------------------

    def save(self) -> Path | None:
        """Write the current state as a checkpoint (unless `keep` is 0)."""
        if not self.write:
            return None
        if self.step_in_epoch and not self._loss_before_saving():
            return None
        arrays: dict[str, Any] = {}
        names: dict[str, list[str]] = {}
        for group, variables in self._variables().items():
            names[group] = [v.path for v in variables]
            for i, variable in enumerate(variables):
                arrays[f"{group}/{i:05d}"] = keras.ops.convert_to_numpy(variable)
        if not all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f"):
            # The step's loss was finite but its update was not: keep the last good one.
            log.warning("no checkpoint at step %d: the weights are not finite", self.global_step)
            return None
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        arrays["rng/numpy_keys"] = keys
        version, state, python_gauss = random.getstate()
        loss = self.loss if isinstance(self.loss, float) else None
        sane = is_sane_loss(loss, self.lowest_loss)
        if sane and loss is not None:
            self.lowest_loss = loss if self.lowest_loss is None else min(self.lowest_loss, loss)
        meta = {
            "loss": loss,
            "sane": sane,
            "lowest_loss": self.lowest_loss,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "history": self.history,
            "variables": names,
            "rng": {
                "numpy": [kind, int(position), int(has_gauss), float(gauss)],
                "python": [version, list(state), python_gauss],
            },
        }
        path = write_checkpoint(self.directory, arrays, meta, keep=self.keep)
        self._newest_saved = (path, self.global_step)
        log.debug("checkpoint %s", path)
        return path

    def _loss_before_saving(self) -> bool:
        """Take the loss of the current (mid-epoch) step into `self.loss`, waiting for
        Keras' callback thread to read it; False when a step up to it diverged (then
        `StopOnNonFinite` stops the run at the next step boundary)."""
        if self.losses is None:
            self.loss = None
            return True
        step = self.global_step
        self.losses.wait_through(step)
        self._judge_newest_saved()
        diverged = self.losses.diverged
        if diverged is not None and diverged[0] <= step:
            log.warning("no checkpoint at step %d: the loss diverged at step %d", step,
                        diverged[0])  # fmt: skip
            return False
        self.loss = self.losses.loss(step)
        return True

    def _judge_newest_saved(self) -> None:
        """Mark the newest checkpoint not sane once the loss of the step after it (computed
        with its weights) is known and is not sane."""
        if self._newest_saved is None or self.losses is None:
            return
        path, step = self._newest_saved
        if not self.losses.has(step + 1):
            return
        if not is_sane_loss(self.losses.loss(step + 1), self.lowest_loss):
            mark_not_sane(path)
        self._newest_saved = None

    def restore_into(self, model: Any) -> None:
        """Restore the checkpoint into `model` without training (a resumed run whose
        training was done: the stages after it run on the checkpoint's state)."""
        self.set_model(model)
        self.on_train_begin()

    def _restore(self, checkpoint: Checkpoint) -> None:
        arrays = checkpoint.arrays()
        saved_names = checkpoint.meta.get("variables", {})
        for group, variables in self._variables().items():
            if group == "metrics":
                continue
            # The learning rate is the recipe's (a resume may lower it), not the saved one.
            rates = [(v, keras.ops.convert_to_numpy(v)) for v in variables
                     if group == "optimizer" and v.name == "learning_rate"]  # fmt: skip
            values = [arrays[f"{group}/{i:05d}"] for i in range(len(saved_names.get(group, [])))]
            _assign(variables, values, group, checkpoint.path)
            for variable, value in rates:
                variable.assign(value)
        if checkpoint.step_in_epoch:
            count = len(saved_names.get("metrics", []))
            self._metrics_pending = [arrays[f"metrics/{i:05d}"] for i in range(count)]
        kind, position, has_gauss, gauss = checkpoint.meta["rng"]["numpy"]
        np.random.set_state((kind, arrays["rng/numpy_keys"], position, has_gauss, gauss))
        version, state, python_gauss = checkpoint.meta["rng"]["python"]
        random.setstate((version, tuple(state), python_gauss))
        log.info(
            "resumed from %s: epoch %d, step %d of it (global step %d)",
            checkpoint.path.name, checkpoint.epoch + 1, checkpoint.step_in_epoch,
            checkpoint.global_step,
        )  # fmt: skip

    def _add_saved_metrics(self) -> None:
        """Without a tf.distribute strategy Keras creates the compiled metrics when it
        traces the first step, after `on_epoch_begin`. Their variables are accumulators
        (totals, counts, confusion counts) that start at zero, so the saved state plus the
        first resumed batch's is the state an uninterrupted run has here."""
        variables = self.model.metrics_variables
        saved, self._metrics_pending = self._metrics_pending, None
        current = [keras.ops.convert_to_numpy(v) for v in variables]
        if len(current) == len(saved):
            saved = [s + c for s, c in zip(saved, current, strict=True)]
        _assign(variables, saved, "metrics", self.resume_from.path)

    def _check_steps(self, steps: int) -> None:
        saved = self.resume_from.steps_per_epoch if self.resume_from else None
        if saved and saved != steps:
            raise RunError(
                f"cannot resume from {self.resume_from.path}: it was saved with {saved} steps "
                f"per epoch and this run has {steps} (the data changed size); start a new run."
            )

    def _variables(self) -> dict[str, list[Any]]:
        optimizer = self.model.optimizer
        return {
            "model": list(self.model.variables),
            "optimizer": list(optimizer.variables) if optimizer is not None else [],
            "metrics": list(self.model.metrics_variables),
        }

    # --- Signals --------------------------------------------------------------------------

    @contextlib.contextmanager
    def stop_on_signals(self) -> Iterator[None]:
        """Within the block, SIGTERM and SIGINT ask for a checkpoint and a stop at the next
        step boundary; a second one stops at once (KeyboardInterrupt). Handlers that
        someone else installed (a tuner's Ctrl-C) are left alone."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        defaults = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}
        previous = {}
        for number, default in defaults.items():
            if signal.getsignal(number) is default:
                previous[number] = signal.signal(number, self._on_signal)
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _on_signal(self, number: int, frame: Any) -> None:
        if self.signal_number is not None:
            raise KeyboardInterrupt
        self.signal_number = number
        log.warning(
            "%s received: saving a checkpoint at the next step boundary, then stopping "
            "(send it again to stop at once, without a checkpoint)",
            signal.Signals(number).name,
        )

    def _stop(self, *, saved: bool) -> None:
        name = signal.Signals(self.signal_number).name
        if saved:
            where = f"a checkpoint of epoch {self.epoch + 1}, step {self.step_in_epoch} was saved"
        elif self.write:
            where = "the newest checkpoint is the last epoch end's (the epoch size is unknown)"
        else:
            where = "no checkpoint was saved (train.keep_checkpoints=0)"
        raise RunInterrupted(
            f"stopped by {name} at global step {self.global_step}: {where}. Continue with "
            f"`kplug resume {self.directory}` (or `kplug run RECIPE --resume "
            f"{self.directory}`).",
            self.signal_number,
        )


def _assign(variables: list[Any], values: list[Any], group: str, source: Any = None) -> None:
    if len(variables) != len(values) or any(
        tuple(v.shape) != tuple(a.shape) for v, a in zip(variables, values, strict=False)
    ):
        shapes = [tuple(v.shape) for v in variables]
        saved = [tuple(a.shape) for a in values]
        raise RunError(
            f"the checkpoint {source or ''} does not fit this model: its {group} variables have "
            f"shapes {_short(saved)}, the model's have {_short(shapes)}. Resume with the recipe "
            "the run was started with, or start a new run."
        )
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def _short(shapes: list[tuple]) -> str:
    shown = ", ".join(str(s) for s in shapes[:6])
    return f"[{shown}{', ...' if len(shapes) > 6 else ''}] ({len(shapes)})"


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
