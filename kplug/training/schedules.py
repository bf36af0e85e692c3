"""`WarmupDecay`: linear warmup, then constant, cosine, linear or exponential decay."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kplug")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate that rises linearly from 0 to `peak` over `warmup_steps`, then decays.

    Args:
        peak: the learning rate at the end of warmup.
        warmup_steps: steps of linear warmup (0 for none).
        decay: `constant`, `cosine`, `linear` or `exponential`.
        decay_steps: steps of decay after warmup (cosine and linear reach
            `peak * final_fraction` there; exponential multiplies by `decay_rate` every
            `decay_steps`).
        final_fraction: the floor of cosine/linear decay, as a fraction of `peak`.
        decay_rate: the exponential decay factor.

    Example:
    ```python
    schedule = WarmupDecay(1e-3, warmup_steps=100, decay="cosine", decay_steps=900)
    ```
    """

    def __init__(
        self,
        peak: float,
        warmup_steps: int = 0,
        decay: str = "constant",
        decay_steps: int = 1,
        final_fraction: float = 0.0,
        decay_rate: float = 0.96,
    ):
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.decay = decay
        self.decay_steps = max(1, decay_steps)
        self.final_fraction = final_fraction
        self.decay_rate = decay_rate

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(self.warmup_steps)
        warm = self.peak * (step + 1.0) / max(warmup, 1.0)
        t = ops.clip((step - warmup) / float(self.decay_steps), 0.0, 1.0)
        floor = self.peak * self.final_fraction
        if self.decay == "cosine":
            decayed = floor + (self.peak - floor) * 0.5 * (1.0 + ops.cos(math.pi * t))
        elif self.decay == "linear":
            decayed = self.peak - (self.peak - floor) * t
        elif self.decay == "exponential":
            decayed = self.peak * ops.power(
                self.decay_rate, ops.maximum(step - warmup, 0.0) / float(self.decay_steps)
            )
        else:
            decayed = ops.convert_to_tensor(self.peak, "float32")
        return ops.where(step < warmup, warm, decayed)

    def get_config(self):
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
            "decay_steps": self.decay_steps,
            "final_fraction": self.final_fraction,
            "decay_rate": self.decay_rate,
        }
