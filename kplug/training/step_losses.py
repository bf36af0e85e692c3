"""`StepLosses`: the loss of each recent training step, shared between threads.

Keras reads a step's logs (a device array) on its callback thread when every callback
with a batch-end hook is `async_safe`, so that no training step waits for the host.
`StopOnNonFinite` records each step's loss there; the training thread reads the records
where it needs a loss (a step checkpoint, the NaN stop) and waits only for the steps it
asks about. No Keras here.
"""

from __future__ import annotations

import math
import threading

# Records older than this many steps are dropped; readers ask about the newest steps.
KEPT_STEPS = 4096


class StepLosses:
    """The losses of the newest training steps, by global step (counted from 1).

    Args:
        first_step: the global steps done before this process trained (a resumed run's
            position): no loss of them will come.

    Example:
    ```python
    losses = StepLosses()
    losses.record(1, 0.9)            # on Keras' callback thread
    losses.wait_through(1)           # on the training thread: True once step 1 is in
    losses.loss(1)                   # 0.9
    ```
    """

    def __init__(self, first_step: int = 0):
        self._losses: dict[int, float | None] = {}
        self._recorded = threading.Condition()
        self.through = first_step  # every step up to this one is recorded (or never comes)
        self.newest = first_step
        self.diverged: tuple[int, float] | None = None  # the first step with a non-finite loss

    def record(self, step: int, loss: float | None) -> None:
        """The loss of global step `step` (None: the step logged no loss)."""
        with self._recorded:
            self._losses[step] = loss
            self._losses.pop(step - KEPT_STEPS, None)
            self.newest = max(self.newest, step)
            first = self.diverged is None or step < self.diverged[0]
            if loss is not None and not math.isfinite(loss) and first:
                self.diverged = (step, loss)
            while self.through + 1 in self._losses:
                self.through += 1
            self._recorded.notify_all()

    def skip_to(self, step: int) -> None:
        """No loss of the steps up to `step` will be recorded (a new epoch or fit starts
        after them)."""
        with self._recorded:
            self.through = max(self.through, step)
            self.newest = max(self.newest, step)
            self._recorded.notify_all()

    def wait_through(self, step: int, timeout: float = 600.0) -> bool:
        """Wait until the losses of every step up to `step` are recorded; False when they
        were not within `timeout` seconds."""
        with self._recorded:
            return self._recorded.wait_for(lambda: self.through >= step, timeout)

    def has(self, step: int) -> bool:
        with self._recorded:
            return step in self._losses

    def loss(self, step: int) -> float | None:
        """The recorded loss of `step`, or None (not recorded, or no loss logged)."""
        with self._recorded:
            return self._losses.get(step)

    def last_finite_before(self, step: int) -> tuple[int, float] | None:
        """The newest recorded (step, loss) before `step` whose loss is finite."""
        with self._recorded:
            earlier = [(s, v) for s, v in self._losses.items() if s < step and v is not None]
        finite = [(s, v) for s, v in earlier if math.isfinite(v)]
        return max(finite) if finite else None
