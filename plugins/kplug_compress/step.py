"""`CompressionStep`: what every compression step of this plugin shares.

`apply` measures the baseline on the run's first step, runs the step's `compress`,
measures the result, writes the report, then enforces `max_accuracy_drop`. Fine-tuning
runs through the recipe's strategy (`ctx.strategy.fit`) on the recipe's training data.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

import kplug
from kplug import count_examples
from kplug_compress.bridge import is_tf_keras_model
from kplug_compress.measure import measure_model, report_for
from kplug_compress.report import STATE_KEY

# A smoke run fine-tunes one epoch of this many steps.
SMOKE_STEPS = 2


class StepConfig(kplug.Config):
    """Options every compression step has."""

    max_accuracy_drop: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="fail the run (exit 2, after writing the report) when the test metric "
        "the objective watches (accuracy) is worse than the baseline's by more than this; "
        "0.01 is one point",
    )


class FineTuneConfig(StepConfig):
    """Options of steps that fine-tune the compressed model."""

    epochs: NonNegativeInt = Field(2, description="fine-tuning epochs (1 in a smoke run)")
    steps_per_epoch: PositiveInt | None = Field(
        None, description="null: the whole training split (or train.steps_per_epoch)"
    )
    learning_rate: PositiveFloat | None = Field(
        None, description="fine-tuning learning rate; null: the recipe's optimizer.learning_rate"
    )


class CompressionStep(kplug.Compressor):
    """A measured compression step; subclasses implement `compress`.

    Args:
        config: the step's validated config.
        ctx: the run context.
    """

    name = "step"

    def __init__(self, config: StepConfig, ctx: kplug.RunContext):
        self.config = config

    def apply(self, model: Any, ctx: kplug.RunContext) -> Any:
        report = report_for(ctx, model)
        index = sum(1 for row in report.rows if row.get("kind") == "step") + 1
        start = time.perf_counter()
        compressed, details = self.compress(model, ctx)
        row = measure_model(
            compressed,
            ctx,
            stage=f"{index}. {self.name}",
            filename=f"{index:02d}-{self.name}",
            seconds=time.perf_counter() - start,
            details=details,
        )
        row["kind"] = "step"
        report.add(row, self.config.max_accuracy_drop)
        report.write()
        ctx.log.info("compression step %s: %s", self.name, _summary(row, report.metric))
        report.enforce(row, smoke=ctx.smoke)
        return compressed

    def compress(self, model: Any, ctx: kplug.RunContext) -> tuple[Any, dict[str, Any]]:
        """Return the compressed model and step-specific facts for the report."""
        raise NotImplementedError


def require_keras_model(model: Any, step: str) -> None:
    """Keras 3 steps cannot take the tf_keras model that `qat` returns."""
    if is_tf_keras_model(model):
        raise kplug.KplugError(
            f"{step} needs a Keras 3 model, but an earlier qat step turned the model into a "
            "tf_keras quantization-aware model whose fake-quantization layers only TFLite "
            "conversion removes. Put qat last in `compression:` (for pruned or clustered "
            "QAT, use qat's `preserve:` option)."
        )


# ---------------------------------------------------------------------------------------
# Layer selection
# ---------------------------------------------------------------------------------------


def select_layers(
    model: Any, patterns: Iterable[str], supports: Callable[[Any], bool], step: str
) -> list[Any]:
    """The layers with weights that match `patterns` (fnmatch on names; none: every layer
    `supports` accepts). A pattern matching nothing, or a matched layer the step cannot
    handle, is an error naming the model's layers."""
    patterns = list(patterns)
    weighted = [layer for layer in model.layers if layer.weights]
    names = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in weighted)
    if not patterns:
        chosen = [layer for layer in weighted if supports(layer)]
        if not chosen:
            raise kplug.KplugError(f"{step}: no layer of the model can be handled; layers: {names}")
        return chosen
    unmatched = [p for p in patterns if not any(_match(layer, [p]) for layer in weighted)]
    if unmatched:
        raise kplug.KplugError(
            f"{step}: layers {unmatched} match no layer with weights; the model has: {names}"
        )
    chosen = [layer for layer in weighted if _match(layer, patterns)]
    refused = [f"{layer.name} ({type(layer).__name__})" for layer in chosen if not supports(layer)]
    if refused:
        raise kplug.KplugError(f"{step} cannot handle layers {', '.join(refused)}")
    return chosen


def _match(layer: Any, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(layer.name, pattern) for pattern in patterns)


def kernel_sparsity(layers: Iterable[Any]) -> dict[str, float]:
    """Fraction of zeros in each layer's kernels (weights of rank >= 2; biases excluded)."""
    import numpy as np

    out = {}
    for layer in layers:
        kernels = [w for w in layer.get_weights() if np.ndim(w) >= 2]
        size = sum(k.size for k in kernels)
        if size:
            zeros = sum(int(np.count_nonzero(k == 0)) for k in kernels)
            out[layer.name] = round(zeros / size, 4)
    return out


# ---------------------------------------------------------------------------------------
# Fine-tuning
# ---------------------------------------------------------------------------------------


def fine_tune_schedule(config: FineTuneConfig, ctx: kplug.RunContext) -> tuple[int, int | None]:
    """(epochs, steps per epoch); one epoch of a few steps in a smoke run."""
    if ctx.smoke:
        return min(1, config.epochs), SMOKE_STEPS
    return config.epochs, config.steps_per_epoch or ctx.recipe.train.steps_per_epoch


def fine_tune_steps(config: FineTuneConfig, ctx: kplug.RunContext) -> int:
    """Optimizer steps the fine-tuning will take."""
    epochs, steps = fine_tune_schedule(config, ctx)
    if steps is None:
        steps = ctx.steps_per_epoch() or 1
    return epochs * steps


def fine_tune(model: Any, config: FineTuneConfig, ctx: kplug.RunContext,
              callbacks: list[Any] = ()) -> dict[str, list[float]]:  # fmt: skip
    """Fit a compiled model (Keras 3 or tf_keras) on the training split."""
    epochs, steps = fine_tune_schedule(config, ctx)
    if not epochs:
        return {}
    data = ctx.data
    if not count_examples(data.validation):
        data = data.replace(validation=None)
    return ctx.strategy.fit(
        model,
        data,
        batch_size=ctx.recipe.data.options.batch_size,
        epochs=epochs,
        steps_per_epoch=steps,
        validation_steps=SMOKE_STEPS if ctx.smoke else ctx.recipe.train.validation_steps,
        callbacks=list(callbacks),
        verbose=ctx.recipe.train.verbose,
        shuffle=ctx.recipe.data.options.shuffle,
        seed=ctx.seed,
    )


def compile_keras(model: Any, ctx: kplug.RunContext, learning_rate: float | None) -> None:
    """Compile a Keras 3 model the way the objective compiles the trained model, with the
    fine-tuning learning rate."""
    objective = ctx.build(ctx.recipe.objective)
    objective.compile(model, with_learning_rate(ctx, learning_rate))


def with_learning_rate(ctx: kplug.RunContext, learning_rate: float | None) -> kplug.RunContext:
    """`ctx` whose `make_optimizer` uses `learning_rate` (unchanged when None)."""
    if learning_rate is None:
        return ctx
    tuned = dataclasses.replace(ctx)
    make = ctx.make_optimizer
    tuned.make_optimizer = lambda **overrides: make(**{"learning_rate": learning_rate, **overrides})
    return tuned


def compile_tf_keras(model: Any, ctx: kplug.RunContext, learning_rate: float | None) -> None:
    """Compile a tf_keras model with the recipe's optimizer (its tf_keras twin) and the
    objective's Keras 3 loss, which runs on TensorFlow tensors like any function."""
    import tf_keras

    name = ctx.recipe.optimizer.name
    try:
        optimizer = tf_keras.optimizers.get(name)
    except ValueError:
        raise kplug.KplugError(
            f"TF-MOT fine-tuning runs in tf_keras, which has no {name!r} optimizer; set "
            "optimizer.name to adam, sgd, rmsprop or adamw for this recipe."
        ) from None
    optimizer.learning_rate = learning_rate or ctx.recipe.optimizer.learning_rate
    loss = keras_loss(ctx)
    model.compile(optimizer=optimizer, loss=lambda y_true, y_pred: loss(y_true, y_pred))


def keras_loss(ctx: kplug.RunContext) -> Any:
    """The objective's loss, as the baseline model was compiled with it."""
    import keras

    loss = ctx.state[STATE_KEY].judge.loss
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if not callable(loss):
        raise kplug.KplugError(
            "TF-MOT fine-tuning supports models with one loss; this objective compiles "
            f"{type(loss).__name__} losses."
        )
    return loss


def _summary(row: dict[str, Any], metric: str) -> str:
    value = row.get("test", {}).get(metric)
    shown = f"{metric} {value:.4f}" if value is not None else "no test split"
    return (
        f"{row['parameters']:,} parameters ({row['nonzero_parameters']:,} non-zero), "
        f"{row['gzip_bytes']:,} bytes gzipped, {shown}"
    )
