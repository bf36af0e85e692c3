"""`ResumableGridSearchOracle`: KerasTuner's grid oracle, resumable and parallel.

Imported only when a grid search starts: it imports KerasTuner at the top.
"""

from __future__ import annotations

from typing import Any

from keras_tuner.engine.trial import TrialStatus
from keras_tuner.oracles import GridSearchOracle


class ResumableGridSearchOracle(GridSearchOracle):
    """A `GridSearchOracle` that hands out the first combination not tried yet.

    KerasTuner 1.4.8's grid oracle derives each new combination from a trial that has
    ended and keeps that bookkeeping in memory only. So a reloaded grid search raises
    KeyError after its first trial or stops early (keras-team/keras-tuner#1055, open), and
    parallel workers mostly wait for each other's trials to end. This one walks the grid
    in KerasTuner's own order (`_get_next_combination`) and skips what the oracle already
    tried (`_tried_so_far`, which KerasTuner saves): resuming needs no extra state, and
    every worker gets a combination at once.
    """

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        space = self.get_space()
        values = {hp.name: hp.default for hp in space.space if space.is_active(hp)}
        while values is not None and self._duplicate(values):
            values = self._get_next_combination(values)
        if values is not None:
            return {"status": TrialStatus.RUNNING, "values": values}
        # Trials still running may fail and be retried: keep their workers' peers around.
        status = TrialStatus.IDLE if self.ongoing_trials else TrialStatus.STOPPED
        return {"status": status, "values": None}
