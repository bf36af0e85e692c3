"""`SampleQuality`: each epoch, a grid of samples from fixed noise and the scorer's figure."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kplug_gan.grid import write_png
from kplug_gan.quality import score, to_unit

log = logging.getLogger("kplug")


class SampleQuality(keras.callbacks.Callback):
    """Writes `samples/epoch_NNN.png` and adds `sample_confidence` and
    `sample_class_entropy` to the epoch's logs (so metrics.csv has them).

    It must run before the callbacks that record the logs (the objective's callbacks do).

    Args:
        grid_noise: the noise of the grid's samples, the same every epoch.
        score_noise: the noise of the samples the scorer judges, the same every epoch.
        scorer: the classifier that scores the samples (`kplug_gan.quality`), or None.
        directory: where `samples/` goes; None writes nothing (a worker that is not the
            chief).
    """

    def __init__(self, grid_noise: np.ndarray, score_noise: np.ndarray, scorer: Any = None,
                 directory: Path | None = None):  # fmt: skip
        super().__init__()
        self.grid_noise = grid_noise
        self.score_noise = score_noise
        self.scorer = scorer
        self.directory = directory

    def on_epoch_end(self, epoch, logs=None):
        # With a moving average of the generator's weights, the samples come from it; the
        # current weights' score is logged too (sample_confidence_raw, ...).
        ema = bool(getattr(self.model, "ema_weights", None))
        if ema and self.scorer is not None and len(self.score_noise) and logs is not None:
            figures = self._score()
            logs["sample_confidence_raw"] = figures["confidence"]
            logs["sample_class_entropy_raw"] = figures["class_entropy"]
        if ema:
            self.model.swap_ema()
        try:
            self._samples(epoch, logs)
        finally:
            if ema:
                self.model.swap_ema()

    def on_train_end(self, logs=None):
        # The saved generator (model.keras) is the averaged one, as the last grid showed.
        if getattr(self.model, "ema_weights", None):
            self.model.use_ema()

    def _score(self) -> dict:
        generator = self.model.generator
        images = to_unit(generator.predict(self.score_noise, batch_size=256, verbose=0))
        return score(self.scorer, images)

    def _samples(self, epoch, logs):
        generator = self.model.generator
        if self.directory is not None:
            images = to_unit(generator.predict(self.grid_noise, verbose=0))
            (self.directory / "samples").mkdir(exist_ok=True)
            write_png(self.directory / "samples" / f"epoch_{epoch + 1:03d}.png", images)
        if self.scorer is None or not len(self.score_noise) or logs is None:
            return
        figures = self._score()
        logs["sample_confidence"] = figures["confidence"]
        logs["sample_class_entropy"] = figures["class_entropy"]
        log.info("epoch %d samples: confidence %.3f, class entropy %.3f nats, classes %s",
                 epoch + 1, figures["confidence"], figures["class_entropy"],
                 figures["class_histogram"])  # fmt: skip
