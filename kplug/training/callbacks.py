"""The Keras callbacks every run has: per-epoch log lines, metrics.csv, timing, the NaN stop.

Epochs are numbered from 1 in both train.log (`epoch 3/10`) and metrics.csv (`epoch` 3),
as Keras' progress bar numbers them; `phases.json` gives epoch ranges `[first, last)`
counted from 0, as Keras' `initial_epoch` does.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

import keras

from kplug.errors import TrainingDivergedError
from kplug.training.step_losses import StepLosses

# The console hides these (Keras prints its own progress); the run log keeps them.
log = logging.getLogger("kplug.epochs")


class EpochLog(keras.callbacks.Callback):
    """Logs one line per epoch (`epoch 3/10: loss=0.12 accuracy=0.97 ...`) to the run log.

    Args:
        epochs: the number of epochs of the run, for the `3/10`.
    """

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        shown = " ".join(f"{k}={_fmt(v)}" for k, v in (logs or {}).items())
        log.info("epoch %d/%d: %s", epoch + 1, self.epochs, shown)


class MetricsCSV(keras.callbacks.CSVLogger):
    """Keras' CSVLogger with epochs numbered from 1, as in train.log.

    Its columns are the keys of the first epoch's logs: put it after every callback that
    adds keys (the recipe's `callbacks:`), so they become columns.
    """

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


class Timing(keras.callbacks.Callback):
    """Measures training wall time and counts training batches (for samples/s)."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0
        self.batches = 0
        self._start = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.seconds += time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        # Counted per epoch, not per batch: a batch hook would slow every step.
        steps = self.params.get("steps") if self.params else None
        self.batches += steps or 0


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss with `TrainingDivergedError`.

    No training step waits for it. Keras reads a step's logs (a device array) after every
    step on the training thread as soon as one callback has a batch-end hook, unless each
    such callback is `async_safe`; then it reads them on its callback thread while the next
    steps run. This callback is: its batch-end hook only records the step's loss in
    `losses`. The training thread raises the error at the next step boundary after the
    loss was read (on TensorFlow, whose Keras calls batch hooks on the training thread, at
    once), at the latest at the epoch's end, before any other callback sees that epoch. The
    step named is exact: the first one whose loss (Keras logs the epoch's running mean) is
    not finite. `StepCheckpoint` reads the same records and saves no diverged state.

    Args:
        losses: where the steps' losses are recorded (shared with `StepCheckpoint`); its
            `through` is the global step training starts from (a resumed run's position).
        hints: what to try, appended to the message.
        run_directory: where the checkpoints are, to name the newest in the message.
    """

    async_safe = True

    def __init__(
        self,
        losses: StepLosses | None = None,
        hints: tuple[str, ...] = (),
        run_directory: Path | None = None,
    ):
        super().__init__()
        self.losses = losses or StepLosses()
        self.step = self.losses.through  # global steps done before the current epoch
        self.hints = hints
        self.run_directory = run_directory
        self._training_thread: int | None = None

    def on_train_begin(self, logs=None):
        self._training_thread = threading.get_ident()

    def on_epoch_begin(self, epoch, logs=None):
        self.losses.skip_to(self.step)

    def on_train_batch_begin(self, batch, logs=None):
        self._raise_if_diverged()

    def on_train_batch_end(self, batch, logs=None):
        # `batch` counts this fit's steps of the epoch from 0, the same on every thread.
        loss = (logs or {}).get("loss")
        self.losses.record(self.step + batch + 1, None if loss is None else float(loss))
        if threading.get_ident() == self._training_thread:
            self._raise_if_diverged()

    def on_epoch_end(self, epoch, logs=None):
        # Keras has waited for the epoch's batch-end hooks: every step is recorded.
        self._raise_if_diverged()
        self.step = self.losses.newest

    def _raise_if_diverged(self) -> None:
        if self.losses.diverged is None:
            return
        # An earlier step's loss may still be on its way (Keras' thread pool): wait for it.
        self.losses.wait_through(self.losses.diverged[0])
        step, loss = self.losses.diverged
        last_finite = self.losses.last_finite_before(step)
        if last_finite is None:
            last = "no finite loss was logged before it in this process"
        else:
            last = f"the last finite loss was {last_finite[1]:.6g} at step {last_finite[0]}"
        self._mark_the_checkpoint_before(step)
        hints = "".join(f"\n  - {hint}" for hint in self.hints)
        raise TrainingDivergedError(
            f"training diverged: the loss became {loss} at step {step} (Keras logs the "
            f"epoch's running mean); {last}. {self._kept()} Try:{hints}"
        )

    def _mark_the_checkpoint_before(self, step: int) -> None:
        """A checkpoint of the step just before this one holds the weights whose loss is
        not finite: it is not a sane place to continue from."""
        from kplug.training.checkpoints import folder_of, mark_not_sane

        if self.run_directory is not None:
            mark_not_sane(folder_of(self.run_directory) / f"step-{step - 1:09d}.json")

    def _kept(self) -> str:
        from kplug.training.checkpoints import newest_sane, newest_valid

        if self.run_directory is None or newest_valid(self.run_directory) is None:
            return "No checkpoint was saved before it."
        sane = newest_sane(self.run_directory)
        if sane is None:
            return "No checkpoint with a sane loss is left (the run diverged before the first)."
        loss = f", loss {sane.meta['loss']:.6g}" if sane.meta.get("loss") is not None else ""
        return (
            f"The last checkpoint with a sane loss is kept: {sane.path} (step "
            f"{sane.global_step}{loss}); continue from it with `kplug resume "
            f"{self.run_directory} --from-step {sane.global_step}` and a change below."
        )


def _fmt(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{value:.4g}" if math.isfinite(value) else str(value)
