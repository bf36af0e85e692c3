"""Keras optimizers from the recipe's `optimizer:` and `train:` sections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from kplug.errors import RecipeError

if TYPE_CHECKING:
    from kplug.recipe import Recipe


class RunContext(Protocol):
    """What an optimizer needs of the run: a `kplug.RunContext` (which builds optimizers
    through this module, so it is described here rather than imported)."""

    recipe: Recipe
    strategy: Any

    def steps_per_epoch(self) -> int | None: ...


# Options passed to the Keras optimizer constructor when set.
_PASSED = (
    "weight_decay", "clipnorm", "global_clipnorm", "clipvalue",
    "beta_1", "beta_2", "epsilon", "momentum", "nesterov", "rho",
)  # fmt: skip


def make_optimizer(ctx: RunContext, **overrides: Any) -> Any:
    """A new Keras optimizer; `overrides` replace `optimizer:` options for this one."""
    import keras

    recipe = ctx.recipe
    options = recipe.optimizer.model_copy(update=overrides)
    kwargs: dict[str, Any] = {
        key: getattr(options, key) for key in _PASSED if getattr(options, key) is not None
    }
    kwargs["learning_rate"] = learning_rate(ctx, options)
    accumulation = recipe.train.gradient_accumulation_steps
    if accumulation > 1:
        kwargs["gradient_accumulation_steps"] = accumulation
    cls = type(keras.optimizers.get(options.name))
    try:
        optimizer = cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise RecipeError(
            f"optimizer {options.name!r} rejects these options: {error}. Remove the options "
            f"it does not take (see keras.optimizers.{cls.__name__})."
        ) from None
    if options.weight_decay and options.exclude_from_weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(options.exclude_from_weight_decay))
    return optimizer


def learning_rate(ctx: RunContext, options: Any) -> Any:
    """A float, or a `WarmupDecay` schedule over the run's optimizer steps."""
    schedule = options.schedule
    peak = options.learning_rate
    if options.scale_learning_rate == "linear" and ctx.strategy is not None:
        peak *= ctx.strategy.num_replicas
    if schedule.name == "constant" and schedule.warmup_steps == 0:
        return peak
    from kplug.training.schedules import WarmupDecay

    decay_steps = schedule.decay_steps
    if decay_steps is None:
        total = total_optimizer_steps(ctx)
        if total is None and schedule.name != "constant":
            raise RecipeError(
                "optimizer.schedule.decay_steps: the number of training steps is unknown "
                "(a dataset of unknown size); set decay_steps or train.steps_per_epoch."
            )
        decay_steps = max(1, (total or 1) - schedule.warmup_steps)
    return WarmupDecay(
        peak,
        warmup_steps=schedule.warmup_steps,
        decay=schedule.name,
        decay_steps=decay_steps,
        final_fraction=schedule.final_fraction,
        decay_rate=schedule.decay_rate,
    )


def total_optimizer_steps(ctx: RunContext) -> int | None:
    per_epoch = ctx.steps_per_epoch()
    if per_epoch is None:
        return None
    accumulation = ctx.recipe.train.gradient_accumulation_steps
    return ctx.recipe.train.epochs * max(1, per_epoch // accumulation)
