"""`prune`: TF-MOT magnitude pruning (prune_low_magnitude), fine-tuned, then stripped."""

from __future__ import annotations

from types import ModuleType
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

import kplug
from kplug_compress.step import FineTuneConfig, fine_tune_steps, kernel_sparsity, select_layers
from kplug_compress.tfmot import TFMOTStep, wrap_layers

Sparsity = Annotated[float, Field(ge=0.0, lt=1.0)]
# By default the polynomial schedule ends here (a fraction of the fine-tuning steps); the
# steps after it train with the final masks fixed, which recovers most of the accuracy.
END_FRACTION = 0.75


class PruneConfig(FineTuneConfig):
    final_sparsity: Sparsity = Field(
        0.5, description="fraction of zero weights at the end, in [0, 1)"
    )
    initial_sparsity: Sparsity = Field(
        0.0, description="polynomial schedule: sparsity at begin_step"
    )
    schedule: Literal["polynomial", "constant"] = Field(
        "polynomial",
        description="polynomial: PolynomialDecay from initial to final sparsity over the "
        "fine-tuning; constant: ConstantSparsity at final_sparsity from begin_step",
    )
    begin_step: NonNegativeInt = Field(0, description="fine-tuning step where pruning starts")
    end_step: PositiveInt | None = Field(
        None,
        description="polynomial: step where the final sparsity is reached; null: after "
        f"{END_FRACTION:.0%} of the fine-tuning, leaving the rest to recover accuracy",
    )
    frequency: PositiveInt = Field(
        100, description="prune every this many steps (capped to fit the schedule)"
    )
    layers: list[str] = Field(
        [],
        description="name patterns (fnmatch) of the layers to prune; empty: every layer "
        "TF-MOT can prune",
    )
    block_size: tuple[PositiveInt, PositiveInt] = Field(
        (1, 1),
        description="prune blocks of this shape in 2-D kernels (Dense), e.g. [1, 4], which "
        "TFLite's sparse kernels and compressors like; other kernels element by element "
        "(TF-MOT supports blocks on 2-D weights only)",
    )

    @model_validator(mode="after")
    def _initial_below_final(self):
        if self.initial_sparsity > self.final_sparsity:
            raise ValueError("initial_sparsity must not exceed final_sparsity")
        return self


class Prune(TFMOTStep):
    """Zeroes the smallest weights of the chosen layers while fine-tuning.

    Pruning happens every `frequency` steps from `begin_step` to `end_step`; the
    fine-tuning steps after that keep the final masks and recover accuracy.
    """

    name = "prune"

    def wrap(self, model: Any, tfmot: ModuleType, ctx: kplug.RunContext):
        from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import (
            PruneRegistry,
        )

        sparsity = tfmot.sparsity.keras
        self.chosen = select_layers(model, self.config.layers, PruneRegistry.supports, self.name)
        schedule = self._schedule(sparsity, fine_tune_steps(self.config, ctx))
        wrapped = wrap_layers(
            model, self.chosen,
            lambda layer: sparsity.prune_low_magnitude(
                layer, pruning_schedule=schedule, block_size=self._block_size(layer)
            ),
        )  # fmt: skip
        return wrapped, {"schedule": schedule.get_config()["config"]}

    def _block_size(self, layer: Any) -> tuple[int, int]:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) == 2:
            return tuple(self.config.block_size)
        return (1, 1)

    def _schedule(self, sparsity: ModuleType, steps: int) -> Any:
        config = self.config
        end = config.end_step or int(steps * END_FRACTION)
        end = min(end, steps - 1)
        span = end - config.begin_step
        if span < 1:
            raise kplug.KplugError(
                f"prune: begin_step {config.begin_step} leaves no fine-tuning steps to prune "
                f"in (end_step {end}, {steps} steps in all); lower begin_step or fine-tune "
                "longer."
            )
        frequency = min(config.frequency, span)
        if config.schedule == "constant":
            return sparsity.ConstantSparsity(
                config.final_sparsity, begin_step=config.begin_step, frequency=frequency
            )
        # The last pruning step must fall on end_step to reach the final sparsity exactly.
        return sparsity.PolynomialDecay(
            initial_sparsity=config.initial_sparsity,
            final_sparsity=config.final_sparsity,
            begin_step=config.begin_step,
            end_step=config.begin_step + frequency * (span // frequency),
            frequency=frequency,
        )

    def callbacks(self, tfmot: ModuleType) -> list[Any]:
        return [tfmot.sparsity.keras.UpdatePruningStep()]

    def strip(self, model: Any, tfmot: ModuleType) -> Any:
        return tfmot.sparsity.keras.strip_pruning(model)

    def facts(self, model: Any) -> dict[str, Any]:
        chosen = {layer.name for layer in self.chosen}
        pruned = [layer for layer in model.layers if layer.name in chosen]
        return {"layer_sparsity": kernel_sparsity(pruned)}
