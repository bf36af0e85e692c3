"""The run pipeline. It knows no model, dataset or device: components do the work.

1. validate the recipe (done by `load_recipe`); create the run directory
2. seed Python, NumPy and the backend; set the dtype policy
3. build the strategy (before the run directory: it says where this process writes);
   everything that creates variables runs in its scope
4. load the data; 5. the objective adapts it and wraps the architecture's network
6. compile and fit with the core and plugin callbacks
7. evaluate; compression steps; exporters; metrics.json and the manifest
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from kplug import splits
from kplug.console import progress_verbosity
from kplug.context import RunContext
from kplug.errors import KplugError, RunError, RunInterrupted
from kplug.recipe import Recipe
from kplug.registry import Registry
from kplug.rundir import RunDirectory, default_runs_root, utc_now
from kplug.stages import (
    build_network,
    data_report,
    load_data,  # noqa: F401  (moved to kplug.stages; kplug.runner.load_data still works)
    prepare_data,
    set_up,
    use_backend,  # noqa: F401  (as load_data)
)
from kplug.training import phases
from kplug.training.initialize import initialize_from

log = logging.getLogger("kplug")

# Smoke runs: every stage, a few steps each.
SMOKE_STEPS = 2
SMOKE_BATCHES = 4


@dataclass
class RunResult:
    """What `run` returns: the run directory and the final metrics."""

    directory: RunDirectory
    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "completed"


def run(
    recipe: Recipe,
    *,
    runs_root: str | os.PathLike | None = None,
    smoke: bool = False,
    argv: list[str] | None = None,
    registry: Registry | None = None,
    resume: str | os.PathLike | None = None,
    trust_model: bool = False,
) -> RunResult:
    """Run a validated recipe end to end and return its run directory and metrics.

    Args:
        recipe: from `kplug.load_recipe`.
        runs_root: where run directories go (`runs/` by default, or `KPLUG_RUNS_DIR`).
        smoke: a few steps of every stage, to catch errors before a long run.
        argv: the command line, recorded in the manifest.
        registry: the component registry; the loaded plugins' by default.
        resume: a run directory to continue from its newest valid checkpoint, at the exact
            step (`kplug resume`); the recipe may change only what `kplug.training.resume` allows.
        trust_model: load saved models that need unsafe deserialization (Lambda layers) or
            are legacy `.h5` files (`--trust-model`); refused by default.
    """
    if smoke:
        recipe = smoke_recipe(recipe)
    registry = registry or _loaded_registry()
    # The strategy comes first (set_up): it says where this process writes (only the
    # chief keeps the run).
    started = time.perf_counter()
    ctx = set_up(recipe, registry, smoke=smoke, argv=argv, trust_model=trust_model)
    timings: dict[str, float] = {"strategy": round(time.perf_counter() - started, 3)}
    if resume is not None:
        directory = _open_for_resume(ctx, resume)
    else:
        directory = ctx.strategy.run_directory(runs_root or default_runs_root(), recipe.name)
        directory.write_json("manifest.json", _manifest_start(ctx))
    ctx.directory = directory
    directory.write_text("recipe.resolved.yaml", recipe.to_yaml())
    handler = _log_to(directory / "train.log")
    from kplug.plugins import plugin_manager

    hook = plugin_manager().hook
    result = RunResult(directory, status="failed")
    try:
        result.metrics = _pipeline(ctx, hook, timings)
        result.status = "completed"
        return result
    except (KeyboardInterrupt, RunInterrupted) as error:
        result.status = "interrupted"
        if isinstance(error, RunInterrupted):
            directory.update_manifest(error=str(error))
        raise
    except KplugError as error:
        directory.update_manifest(error=str(error))
        raise
    except Exception as error:
        directory.update_manifest(error=f"{type(error).__name__}: {error}")
        log.exception("run failed")
        raise
    finally:
        strategy = ctx.strategy.describe() if ctx.strategy is not None else {}
        directory.update_manifest(
            status=result.status, finished=utc_now(), timings=timings, strategy=strategy
        )
        with contextlib.suppress(Exception):
            hook.run_finished(run=ctx, result={"status": result.status, "metrics": result.metrics})
        logging.getLogger("kplug").removeHandler(handler)
        handler.close()


def _pipeline(ctx: RunContext, hook: Any, timings: dict[str, float]) -> dict[str, Any]:
    recipe, directory = ctx.recipe, ctx.directory
    preflight(ctx, parameters=_estimated_parameters(ctx))  # before TensorFlow and the data
    import keras

    keras.utils.set_random_seed(recipe.seed)
    if recipe.train.deterministic and recipe.backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    keras.config.set_dtype_policy(dtype_policy(recipe))

    stage = _Stages(timings)
    hook.run_started(run=ctx)
    with ctx.strategy.scope():
        with stage("data"):
            objective = prepare_data(ctx)
            directory.write_json("data_report.json", data_report(ctx.data))
        with stage("build"):
            ctx.model = objective.build(build_network(ctx), ctx)
            init_from = recipe.model.options.init_from
            if init_from:
                report = initialize_from(
                    ctx.model,
                    init_from,
                    strict=recipe.model.options.init_strict,
                    exclude=recipe.model.options.init_exclude,
                    trust=ctx.trust_model,
                )
                directory.write_json("init_from.json", report)
            objective.compile(ctx.model, ctx)
    preflight(ctx, parameters=int(ctx.model.count_params()))
    log.info(
        "model: %s parameters; data: %s train / %s validation / %s test examples",
        f"{ctx.model.count_params():,}",
        *(splits.count(getattr(ctx.data, s)) for s in ("train", "validation", "test")),
    )

    with stage("fit"):
        history, timing = fit(ctx, objective) if recipe.train.epochs else ({}, None)
    with stage("evaluate"):
        test = evaluate(ctx, ctx.data.test)
        extra = objective.report(ctx.model, ctx.data, ctx)
    metrics = final_metrics(ctx, history, test, timing, extra)
    if ctx.strategy.is_chief:
        with stage("save"):
            save_model(ctx.model, directory, "model.keras")
            write_inference(ctx, ctx.state["dataset_spec"])
    directory.write_json("metrics.json", metrics)
    if ctx.strategy.is_chief:
        with stage("report"):
            write_report(ctx, metrics)

    model = ctx.model
    for section in recipe.compression:
        with stage(f"compress:{section.name}"):
            model = ctx.build(section).apply(model, ctx)
    if ctx.strategy.is_chief:
        for section in recipe.export:
            with stage(f"export:{section.name}"):
                files = ctx.build(section).export(model, directory.path, ctx)
                log.info("exported %s: %s", section.name, ", ".join(str(f) for f in files))
    return metrics


# ---------------------------------------------------------------------------------------
# Stages, usable on their own (kplug data, kplug plan --build, tuners)
# ---------------------------------------------------------------------------------------


def dtype_policy(recipe: Recipe) -> str:
    mixed = recipe.train.mixed_precision
    if mixed is True:
        return "mixed_float16"
    return mixed or "float32"


def callbacks(ctx: RunContext, objective: Any) -> tuple[list[Any], Any]:
    """The core callbacks (CSV metrics, epoch log, timing, early stopping, TensorBoard),
    the objective's and the recipe's plugin callbacks; also returns the timing callback."""
    import keras

    from kplug.training.callbacks import EpochLog, Timing

    train = ctx.recipe.train
    timing = Timing()
    out: list[Any] = [timing, *objective.callbacks(ctx), EpochLog(train.epochs)]
    if ctx.strategy is None or ctx.strategy.is_chief:
        # append: a resumed run continues the file (rewritten from its checkpoint's history)
        out.append(keras.callbacks.CSVLogger(str(ctx.directory / "metrics.csv"), append=True))
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
        from kplug.tracking import tensorboard_callbacks

        out.extend(tensorboard_callbacks(ctx))
    out.extend(ctx.build(section) for section in ctx.recipe.callbacks)
    out.extend(_checkpoint_callbacks(ctx))  # last: they see every other callback's logs
    return out, timing


def fit(ctx: RunContext, objective: Any) -> tuple[dict[str, list[float]], Any]:
    """Fit the recipe's epochs; a resumed run continues at its checkpoint's exact step."""
    from kplug.training.resume import fit_remaining
    from kplug.training.step_checkpoint import StepCheckpoint

    recipe = ctx.recipe
    cbs, timing = callbacks(ctx, objective)
    has_validation = bool(splits.count(ctx.data.validation))
    data = ctx.data if has_validation else ctx.data.replace(validation=None)

    def fit_epochs(*, initial_epoch, epochs, steps_per_epoch=None, start_step=None):
        position = {} if start_step is None else {"start_step": start_step}
        return ctx.strategy.fit(
            ctx.model,
            data,
            batch_size=recipe.data.options.batch_size,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch or recipe.train.steps_per_epoch,
            validation_steps=recipe.train.validation_steps,
            callbacks=cbs,
            verbose=progress_verbosity(recipe.train.verbose),
            shuffle=recipe.data.options.shuffle,
            seed=recipe.seed,
            **position,
        )

    checkpoint = next(c for c in cbs if isinstance(c, StepCheckpoint))
    signals = checkpoint.stop_on_signals() if ctx.strategy.training_loop == "fit" else None
    resuming = [ctx.resume_from]  # the checkpoint, until the phase it falls in has run

    def fit_phase(first_epoch: int, last_epoch: int) -> dict[str, list[float]]:
        resume_point = resuming[0]
        if resume_point is not None and resume_point.epoch >= last_epoch:
            return {}  # a phase the interrupted run finished; its history is the checkpoint's
        resuming[0] = None
        return fit_remaining(resume_point, fit_epochs, first_epoch=first_epoch,
                             epochs=last_epoch, model=ctx.model)  # fmt: skip

    with signals or contextlib.nullcontext():
        # `model.freeze` / `train.phases` (kplug/training/phases.py); otherwise one plain fit.
        history = phases.fit_in_phases(ctx, objective, fit_phase, cbs)
    return history, timing


def _checkpoint_callbacks(ctx: RunContext) -> list[Any]:
    """The NaN stop, then the step checkpoints (so no diverged state is saved)."""
    from kplug.training.callbacks import StopOnNonFinite
    from kplug.training.step_checkpoint import StepCheckpoint

    train, resume_from = ctx.recipe.train, ctx.resume_from
    checkpoint = StepCheckpoint(
        ctx.directory.path,
        steps_per_epoch=resume_from.steps_per_epoch if resume_from else ctx.steps_per_epoch(),
        every=train.checkpoint_every,
        keep=train.keep_checkpoints,
        resume_from=resume_from,
    )
    first_step = resume_from.global_step if resume_from else 0
    stop = StopOnNonFinite(first_step, divergence_hints(ctx.recipe), ctx.directory.path)
    return [stop, checkpoint]


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
        "then continue from the last good checkpoint: kplug resume RUN_DIR "
        "optimizer.learning_rate=..."
    )
    return tuple(hints)


def preflight(ctx: RunContext, *, parameters: int | None) -> None:
    """Writable run directory with room for two checkpoints; before data, then exact."""
    from kplug.plan import OPTIMIZER_SLOTS
    from kplug.training.checkpoints import preflight as check

    if not ctx.strategy.is_chief:
        return
    keep = ctx.recipe.train.keep_checkpoints and ctx.recipe.train.epochs
    slots = OPTIMIZER_SLOTS.get(ctx.recipe.optimizer.name, 2)
    check(ctx.directory.path, parameters=parameters if keep else None, optimizer_slots=slots)


def _estimated_parameters(ctx: RunContext) -> int | None:
    """The architecture's parameter estimate (no data loaded), when it has one."""
    from kplug.plan import plan

    try:
        return plan(ctx.recipe, registry=ctx.registry).get("parameters")
    except Exception:  # an estimate is optional: the exact check follows the build
        log.debug("no parameter estimate", exc_info=True)
        return None


def _open_for_resume(ctx: RunContext, path: str | os.PathLike) -> RunDirectory:
    from kplug.training.resume import history_csv, open_for_resume

    if not ctx.strategy.is_chief or ctx.strategy.training_loop != "fit":
        raise RunError(
            f"--resume works with strategies that train with Keras fit in one process "
            f"(this one: {ctx.recipe.strategy.name}); a multi-worker run resumes from its "
            "per-epoch backup: kplug launch --restart-failed."
        )
    directory, ctx.resume_from = open_for_resume(path, ctx.recipe)
    checkpoint = ctx.resume_from
    directory.write_text("metrics.csv", history_csv(checkpoint.history))
    manifest = directory.manifest()
    resumes = [*manifest.get("resumed", []), {
        "at": utc_now(), "command": ctx.argv, "checkpoint": checkpoint.path.name,
        "epoch": checkpoint.epoch, "step_in_epoch": checkpoint.step_in_epoch,
        "global_step": checkpoint.global_step, "pid": os.getpid(),
    }]  # fmt: skip
    directory.update_manifest(status="running", resumed=resumes, error=None, finished=None,
                              pid=os.getpid(), host=platform.node())  # fmt: skip
    log.info("resuming %s from %s", directory, checkpoint.path.name)
    return directory


def evaluate(ctx: RunContext, split: Any) -> dict[str, float]:
    if not splits.count(split):
        return {}
    steps = SMOKE_STEPS if ctx.smoke else None
    batch_size = ctx.recipe.data.options.batch_size
    return ctx.strategy.evaluate(ctx.model, split, batch_size=batch_size, steps=steps)


def final_metrics(
    ctx: RunContext, history: dict, test: dict, timing: Any, extra: dict
) -> dict[str, Any]:
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


def write_inference(ctx: RunContext, data_spec: Any) -> None:
    from kplug.inference import FILE, inference_metadata

    meta = inference_metadata(ctx.recipe, data_spec, ctx.data.spec, ctx.model, ctx.directory.path)
    ctx.directory.write_json(FILE, meta)


def write_report(ctx: RunContext, metrics: dict[str, Any]) -> None:
    """curves.png and report.md; a failure is logged, never fails the finished run."""
    from kplug.run_report import write_run_report

    try:
        write_run_report(ctx, metrics)
    except Exception as error:
        log.warning("no run report (curves.png, report.md): %s: %s", type(error).__name__, error)
        log.debug("run report failed", exc_info=True)


def save_model(model: Any, directory: RunDirectory, name: str) -> Path:
    """Save a Keras model atomically (a temporary `.keras` file renamed into place)."""
    from kplug.inference import without_compile_config

    temporary = directory.temporary_path(name)
    try:
        with without_compile_config(model):
            model.save(temporary)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return directory.commit(temporary, name)


def smoke_recipe(recipe: Recipe) -> Recipe:
    """The recipe shortened to a few steps of every stage."""
    batch = recipe.data.options.batch_size
    # With phases, every phase runs one epoch (their sum is train.epochs).
    epochs = [f"train.phases.{i}.epochs=1" for i in range(len(recipe.train.phases))] or [
        f"train.epochs={min(1, recipe.train.epochs)}"
    ]
    if recipe.train.phases and "epochs" in recipe.raw.get("train", {}):
        epochs.append("~train.epochs")
    overrides = [
        *epochs,
        f"train.steps_per_epoch={SMOKE_STEPS}",
        f"train.validation_steps={SMOKE_STEPS}",
        f"data.limit={min(recipe.data.options.limit or 10**9, batch * SMOKE_BATCHES)}",
        "~train.early_stopping" if "early_stopping" in recipe.raw.get("train", {}) else "",
    ]
    # The same recipe, shortened by kplug: plugins saw it in `recipe_loaded` already.
    return recipe.with_overrides([o for o in overrides if o], notify_plugins=False)


# ---------------------------------------------------------------------------------------
# Manifest and logging
# ---------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of Python and the libraries kplug runs on (without importing them)."""
    out = {"python": platform.python_version()}
    for dist in ("kplug", "tensorflow", "keras", "keras-hub", "numpy", "tf-keras",
                 "tensorflow-model-optimization", "keras-tuner", "jax"):  # fmt: skip
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def _manifest_start(ctx: RunContext) -> dict[str, Any]:
    from kplug.plugins import plugins

    return {
        "name": ctx.recipe.name,
        "status": "running",
        "started": utc_now(),
        "command": ctx.argv,
        "recipe_source": ctx.recipe.source,
        "seed": ctx.recipe.seed,
        "backend": ctx.recipe.backend,
        "smoke": ctx.smoke,
        "versions": versions(),
        "plugins": {p.name: p.version for p in plugins() if not p.error},
        "host": platform.node(),
        "pid": os.getpid(),
    }


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("kplug")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


class _Stages:
    """`with stage("fit"):` records the stage's wall time and logs its start."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, name: str):
        log.info("stage %s", name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)


def _num(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _loaded_registry() -> Registry:
    from kplug.plugins import registry

    return registry()
