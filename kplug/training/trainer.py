"""`Trainer`: fits the run's model over its phases, continuing a resumed run at its step.

The state of a fit is explicit on the trainer: the callbacks (built once and shared by
every phase, so epochs, metrics.csv and history continue), the checkpoint a resumed run
continues from (`resume_point`, until the phase it falls in has run) and the joined
history. A run without `train.phases` is one phase of `train.epochs`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from typing import TYPE_CHECKING, Any

from kplug.data import splits
from kplug.training import phases

if TYPE_CHECKING:
    from kplug.components import Objective
    from kplug.context import RunContext
    from kplug.recipe import Recipe
    from kplug.training.checkpoints import Checkpoint

log = logging.getLogger("kplug")

History = dict[str, list[float]]


class Trainer:
    """Fits `ctx.model` for the recipe's epochs with the core and plugin callbacks.

    Args:
        ctx: the run, with its strategy, data, compiled model and directory.
        objective: the objective that compiled the model (it compiles again per phase
            and adds its callbacks).

    Example:
    ```python
    trainer = Trainer(ctx, objective)
    history = trainer.fit()  # {"loss": [...], "val_loss": [...]}
    trainer.timing.seconds
    ```
    """

    def __init__(self, ctx: RunContext, objective: Objective):
        from kplug.training.callbacks import Timing

        self.ctx = ctx
        self.objective = objective
        self.timing = Timing()
        self.resume_point: Checkpoint | None = ctx.resume_from
        self.stop_on_non_finite, self.checkpoint = self.checkpoint_callbacks()
        self.callbacks = self.build_callbacks()
        self.history: History = {}
        self.phase_reports: list[dict[str, Any]] = []

    # === Callbacks ===

    def build_callbacks(self) -> list[Any]:
        """The timing callback, the objective's, early stopping, TensorBoard, the recipe's
        plugin callbacks, then the epoch log and metrics CSV (so the keys plugin callbacks
        add to an epoch's logs are logged and become columns), then the NaN stop and the
        step checkpoints (last: they see every other callback's logs)."""
        import keras

        from kplug.training.callbacks import EpochLog, MetricsCSV

        ctx, train = self.ctx, self.ctx.recipe.train
        out: list[Any] = [self.timing, *self.objective.callbacks(ctx)]
        if train.early_stopping is not None:
            stop = train.early_stopping
            out.append(
                keras.callbacks.EarlyStopping(
                    monitor=stop.monitor,
                    patience=stop.patience,
                    min_delta=stop.min_delta,
                    restore_best_weights=stop.restore_best_weights,
                    mode="auto",
                )
            )
        if train.tensorboard:
            from kplug.training.tracking import tensorboard_callbacks

            out.extend(tensorboard_callbacks(ctx))
        out.extend(ctx.build(section) for section in ctx.recipe.callbacks)
        out.append(EpochLog(train.epochs))
        if ctx.strategy is None or ctx.strategy.is_chief:
            # append: a resumed run continues the file (rewritten from its checkpoint's history)
            out.append(MetricsCSV(str(ctx.directory / "metrics.csv"), append=True))
        out.extend((self.stop_on_non_finite, self.checkpoint))
        return out

    def checkpoint_callbacks(self) -> tuple[Any, Any]:
        """The NaN stop and the step checkpoints, in the order they run (so no diverged
        state is saved)."""
        from kplug.training.callbacks import StopOnNonFinite
        from kplug.training.step_checkpoint import StepCheckpoint

        ctx, resume_from = self.ctx, self.ctx.resume_from
        train = ctx.recipe.train
        checkpoint = StepCheckpoint(
            ctx.directory.path,
            steps_per_epoch=resume_from.steps_per_epoch if resume_from else ctx.steps_per_epoch(),
            every=train.checkpoint_every,
            keep=train.keep_checkpoints,
            resume_from=resume_from,
            # Step 0 too, where one process trains alone (every worker of a cluster saves).
            save_initial=ctx.strategy.training_loop == "fit",
        )
        first_step = resume_from.global_step if resume_from else 0
        stop = StopOnNonFinite(first_step, divergence_hints(ctx.recipe), ctx.directory.path)
        return stop, checkpoint

    # === Fit ===

    def fit(self) -> History:
        """Every phase in turn (`model.freeze` / `train.phases`, see
        `kplug.training.phases`), or one plain fit; returns the joined history."""
        ctx = self.ctx
        if self.training_done():
            # Killed after training (evaluate, compress, export): restore and go on.
            self.checkpoint.restore_into(ctx.model)
            self.history = ctx.resume_from.history
            return self.history
        signals = self.checkpoint.stop_on_signals() if ctx.strategy.training_loop == "fit" else None
        with signals or contextlib.nullcontext():
            if not phases.needed(ctx):
                self.history = self.fit_epochs(0, ctx.recipe.train.epochs)
                return self.history
            for phase in phases.plan(ctx):
                self.start_phase(phase)
                _extend(self.history, self.fit_epochs(phase.first_epoch, phase.last_epoch))
                self.csv_appends()
        return self.history

    def training_done(self) -> bool:
        """A resumed run whose checkpoint is at the end of its last epoch."""
        checkpoint = self.ctx.resume_from
        return (
            checkpoint is not None
            and checkpoint.epoch >= self.ctx.recipe.train.epochs
            and checkpoint.step_in_epoch == 0
        )

    def start_phase(self, phase: phases.Phase) -> None:
        """Freeze the phase's layers, record it in phases.json and compile the model anew
        (a new optimizer over the phase's trainable weights at its learning rate)."""
        ctx = self.ctx
        report = phases.set_trainable(ctx.model, phase, ctx)
        log.info(
            "phase %d: epochs %d-%d, learning rate %g, %s trainable / %s frozen parameters",
            phase.index + 1, phase.first_epoch + 1, phase.last_epoch, report["learning_rate"],
            f"{report['trainable_parameters']:,}", f"{report['frozen_parameters']:,}",
        )  # fmt: skip
        if ctx.directory is not None:
            self.phase_reports.append(report)
            ctx.directory.write_json("phases.json", self.phase_reports)
        self.objective.compile(ctx.model, _at_learning_rate(ctx, phase.learning_rate))

    def fit_epochs(self, first_epoch: int, last_epoch: int) -> History:
        """Train epochs `[first_epoch, last_epoch)`. When the resume point falls in them,
        continue from it at its exact step and return the whole run's history so far
        (the checkpoint's epochs included); a range the interrupted run finished is skipped
        (its history is the checkpoint's)."""
        checkpoint = self.resume_point
        if checkpoint is None:
            return self.fit_keras(initial_epoch=first_epoch, epochs=last_epoch)
        if checkpoint.epoch >= last_epoch:
            return {}
        self.resume_point = None
        history = checkpoint.history
        epoch, done = checkpoint.epoch, checkpoint.step_in_epoch
        if done:  # the partly trained epoch: its remaining batches, from the saved position
            steps = checkpoint.steps_per_epoch
            _extend(history, self.fit_keras(initial_epoch=epoch, epochs=epoch + 1,
                                            steps_per_epoch=steps - done,
                                            start_step=epoch * steps + done))  # fmt: skip
            epoch += 1
            if getattr(self.ctx.model, "stop_training", False):
                return history
        if epoch < last_epoch:
            _extend(history, self.fit_keras(initial_epoch=epoch, epochs=last_epoch))
        return history

    def fit_keras(
        self,
        *,
        initial_epoch: int,
        epochs: int,
        steps_per_epoch: int | None = None,
        start_step: int | None = None,
    ) -> History:
        """One call of the strategy's fit; `start_step` starts the data stream there."""
        ctx, recipe = self.ctx, self.ctx.recipe
        has_validation = bool(splits.count(ctx.data.validation))
        data = ctx.data if has_validation else ctx.data.replace(validation=None)
        position = {} if start_step is None else {"start_step": start_step}
        return ctx.strategy.fit(
            ctx.model,
            data,
            batch_size=recipe.data.options.batch_size,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch or recipe.train.steps_per_epoch,
            validation_steps=recipe.train.validation_steps,
            callbacks=self.callbacks,
            verbose=progress_verbosity(recipe.train.verbose),
            shuffle=recipe.data.options.shuffle,
            seed=recipe.seed,
            **position,
        )

    def csv_appends(self) -> None:
        """The next phase appends to the metrics CSV instead of starting it again."""
        for callback in self.callbacks:
            if hasattr(callback, "append") and hasattr(callback, "filename"):
                callback.append = True


def divergence_hints(recipe: Recipe) -> tuple[str, ...]:
    """What to change when the loss becomes NaN/Inf, for this recipe."""
    optimizer = recipe.optimizer
    hints = [
        f"a lower learning rate: optimizer.learning_rate={optimizer.learning_rate:g} now; "
        f"try {optimizer.learning_rate / 10:g}, or a warmup (optimizer.schedule.warmup_steps)",
        "gradient clipping: optimizer.global_clipnorm=1.0"
        + (f" (now {optimizer.global_clipnorm:g})" if optimizer.global_clipnorm else ""),
    ]
    if dtype_policy(recipe) == "mixed_float16":
        hints.append(
            "train.mixed_precision=mixed_float16 uses dynamic loss scaling, which skips "
            "overflowing gradient steps but not a forward pass that overflows float16: try "
            "train.mixed_precision=mixed_bfloat16 or false"
        )
    else:
        hints.append("check the data for NaN or huge values (data_report.json)")
    hints.append(
        "then continue from the last sane checkpoint (named above): kplug resume RUN_DIR "
        "--from-step STEP optimizer.learning_rate=..."
    )
    return tuple(hints)


def dtype_policy(recipe: Recipe) -> str:
    """The Keras dtype policy of `train.mixed_precision`."""
    mixed = recipe.train.mixed_precision
    if mixed is True:
        return "mixed_float16"
    return mixed or "float32"


def _at_learning_rate(ctx: RunContext, rate: float | None) -> RunContext:
    """`ctx` whose recipe's optimizer has learning rate `rate` (`ctx` when None)."""
    if rate is None:
        return ctx
    optimizer = ctx.recipe.optimizer.model_copy(update={"learning_rate": rate})
    return dataclasses.replace(ctx, recipe=dataclasses.replace(ctx.recipe, optimizer=optimizer))


def _extend(history: History, more: History) -> None:
    for key, values in more.items():
        history.setdefault(key, []).extend(values)


def configure_keras(recipe: Recipe) -> None:
    """Seed Python, NumPy and the backend; op determinism; the dtype policy."""
    import keras

    keras.utils.set_random_seed(recipe.seed)
    if recipe.train.deterministic and recipe.backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    keras.config.set_dtype_policy(dtype_policy(recipe))


def preflight(ctx: RunContext, *, parameters: int | None) -> None:
    """Writable run directory with room for the checkpoints (`keep_checkpoints`, the one
    written before the oldest is removed and the last sane one), model.keras and each
    export; before data, then exact."""
    from kplug.training.checkpoints import preflight as check
    from kplug.training.plan import OPTIMIZER_SLOTS

    if not ctx.strategy.is_chief:
        return
    train = ctx.recipe.train
    keep = train.keep_checkpoints + 2 if train.keep_checkpoints and train.epochs else 0
    slots = OPTIMIZER_SLOTS.get(ctx.recipe.optimizer.name, 2)
    check(ctx.directory.path, parameters=parameters, optimizer_slots=slots, checkpoints=keep,
          models=1 + len(ctx.recipe.export))  # fmt: skip


def estimated_parameters(ctx: RunContext) -> int | None:
    """The architecture's parameter estimate (no data loaded), when it has one."""
    from kplug.training.plan import plan

    try:
        return plan(ctx.recipe, registry=ctx.registry).get("parameters")
    except Exception:  # an estimate is optional: the exact check follows the build
        log.debug("no parameter estimate", exc_info=True)
        return None


def progress_verbosity(verbose: str | int) -> str | int:
    """Keras' `verbose` for `train.verbose`: `auto` is a progress bar (1) on a terminal and
    one plain line per epoch (2) when stdout is a file or a pipe, so logs hold no escape
    codes; other values are kept."""
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2
