"""The Keras callbacks every run has: per-epoch log lines and timing."""

from __future__ import annotations

import logging
import math
import time

import keras

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


def _fmt(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{value:.4g}" if math.isfinite(value) else str(value)
