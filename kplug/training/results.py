"""After the fit: evaluation on a split and the run's final metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kplug.data import splits

if TYPE_CHECKING:
    from kplug.context import RunContext
    from kplug.training.callbacks import Timing


def evaluate(ctx: RunContext, split: Any, *, steps: int | None = None) -> dict[str, float]:
    """The model's metrics on `split` ({} for an empty split)."""
    if not splits.count(split):
        return {}
    batch_size = ctx.recipe.data.options.batch_size
    return ctx.strategy.evaluate(ctx.model, split, batch_size=batch_size, steps=steps)


def final_metrics(
    ctx: RunContext, history: dict, test: dict, timing: Timing | None, extra: dict
) -> dict[str, Any]:
    """metrics.json: the last epoch's train and validation metrics, the test metrics,
    the training time and throughput, and the objective's report (`extra`)."""
    last = {k: v[-1] for k, v in history.items() if v}
    train = {k: _num(v) for k, v in last.items() if not k.startswith("val_")}
    validation = {k[4:]: _num(v) for k, v in last.items() if k.startswith("val_")}
    batch_size = ctx.recipe.data.options.batch_size
    seconds = timing.seconds if timing else 0.0
    samples = timing.batches * batch_size if timing else 0
    out: dict[str, Any] = {
        "test": {k: _num(v) for k, v in test.items()},
        "validation": validation,
        "train": train,
        "epochs": len(next(iter(history.values()), [])),
        "train_seconds": round(seconds, 3),
        "samples_per_second": round(samples / seconds, 1) if seconds else None,
    }
    out.update(extra)
    return out


def _num(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
