"""The run pipeline. It knows no model, dataset or device: components do the work.

1. validate the recipe (done by `load_recipe`); create the run directory
2. seed Python, NumPy and the backend; set the dtype policy
3. build the strategy (before the run directory: it says where this process writes);
   everything that creates variables runs in its scope
4. load the data; 5. the objective adapts it and wraps the architecture's network
6. compile and fit with the core and plugin callbacks (`kplug.training.trainer.Trainer`)
7. evaluate; compression steps; exporters; metrics.json and the manifest
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from kplug.context import RunContext
from kplug.data import splits
from kplug.errors import KplugError, RunInterrupted
from kplug.recipe import Recipe
from kplug.registry import Registry
from kplug.rundir import RunDirectory, default_runs_root, is_storage_error, utc_now
from kplug.stages import (
    build_network,
    data_report,
    load_data,  # noqa: F401  (moved to kplug.stages; kplug.runner.load_data still works)
    prepare_data,
    set_up,
    use_backend,  # noqa: F401  (as load_data)
)
from kplug.training.checkpoints import storage_error
from kplug.training.initialize import initialize_from
from kplug.training.models import save_model
from kplug.training.results import evaluate, final_metrics
from kplug.training.resume import resume_run
from kplug.training.trainer import (
    Trainer,
    configure_keras,
    estimated_parameters,
    preflight,
)

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
    from_step: int | None = None,
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
        from_step: with `resume`, continue from the checkpoint of this global step rather
            than the newest (`kplug resume --from-step`); newer ones are set aside.
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
        directory = resume_run(ctx, resume, from_step)
    else:
        directory = ctx.strategy.run_directory(runs_root or default_runs_root(), recipe.name)
        directory.lock()
        directory.write_json("manifest.json", _manifest_start(ctx))
    ctx.directory = directory
    try:
        directory.write_text("recipe.resolved.yaml", recipe.to_yaml())
    except OSError as error:
        directory.unlock()
        raise storage_error(error, directory) from None
    handler = _log_to(directory / "train.log")
    from kplug.plugins import call_lifecycle, plugin_manager

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
        directory.record_in_manifest(error=str(error))
        raise
    except OSError as error:
        if not is_storage_error(error, directory):
            directory.record_in_manifest(error=f"{type(error).__name__}: {error}")
            log.exception("run failed")
            raise
        problem = storage_error(error, directory)
        directory.record_in_manifest(error=str(problem))
        raise problem from None
    except Exception as error:
        from kplug.backends import missing_tensorflow

        if (missing := missing_tensorflow(error)) is not None:
            directory.record_in_manifest(error=str(missing))
            raise missing from error
        directory.record_in_manifest(error=f"{type(error).__name__}: {error}")
        log.exception("run failed")
        raise
    finally:
        strategy = ctx.strategy.describe() if ctx.strategy is not None else {}
        directory.record_in_manifest(status=result.status, finished=utc_now(), timings=timings,
                                     strategy=strategy)  # fmt: skip
        # Each plugin's run_finished on its own: one that raises is a warning naming it.
        call_lifecycle("run_finished", run=ctx,
                       result={"status": result.status, "metrics": result.metrics})  # fmt: skip
        logging.getLogger("kplug").removeHandler(handler)
        handler.close()
        directory.unlock()


def _pipeline(ctx: RunContext, hook: Any, timings: dict[str, float]) -> dict[str, Any]:
    from kplug.plugins import call_lifecycle

    recipe, directory = ctx.recipe, ctx.directory
    preflight(ctx, parameters=estimated_parameters(ctx))  # before TensorFlow and the data
    configure_keras(recipe)

    stage = _Stages(timings)
    call_lifecycle("run_started", fail=True, run=ctx)  # a raising plugin is named
    with ctx.strategy.scope():
        with stage("data"):
            objective = prepare_data(ctx)
            report = data_report(ctx.data, f"dataset {recipe.data.name!r}")
            directory.write_json("data_report.json", report)
        with stage("build"):
            ctx.model = objective.build(build_network(ctx), ctx)
            init_from = recipe.model.options.init_from
            # A resumed run's checkpoint holds every weight: init_from is not read again.
            if init_from and ctx.resume_from is None:
                report = initialize_from(
                    ctx.model,
                    init_from,
                    strict=recipe.model.options.init_strict,
                    exclude=recipe.model.options.init_exclude,
                    trust=ctx.trust_model,
                    training=bool(recipe.train.epochs),
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
        trainer = Trainer(ctx, objective) if recipe.train.epochs else None
        history = trainer.fit() if trainer else {}
    with stage("evaluate"):
        test = evaluate(ctx, ctx.data.test, steps=SMOKE_STEPS if ctx.smoke else None)
        extra = objective.report(ctx.model, ctx.data, ctx)
    metrics = final_metrics(ctx, history, test, trainer and trainer.timing, extra)
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


def write_inference(ctx: RunContext, data_spec: Any) -> None:
    from kplug.inference import FILE, inference_metadata
    from kplug.plugins import each_result, plugin_manager

    meta = inference_metadata(ctx.recipe, data_spec, ctx.data.spec, ctx.model)
    fields = each_result(
        plugin_manager(), "inference_fields", run=ctx, directory=ctx.directory.path
    )
    for extra in fields:
        meta.update({key: value for key, value in extra.items() if key not in meta})
    ctx.directory.write_json(FILE, meta)


def write_report(ctx: RunContext, metrics: dict[str, Any]) -> None:
    """curves.png and report.md; a failure is logged, never fails the finished run."""
    from kplug.training.report import write_run_report

    try:
        write_run_report(ctx, metrics)
    except Exception as error:
        log.warning("no run report (curves.png, report.md): %s: %s", type(error).__name__, error)
        log.debug("run report failed", exc_info=True)


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
    return recipe.with_overrides([o for o in overrides if o])


# ---------------------------------------------------------------------------------------
# Manifest and logging
# ---------------------------------------------------------------------------------------


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


def _loaded_registry() -> Registry:
    from kplug.plugins import registry

    return registry()


def versions() -> dict[str, str]:
    """Versions for a run's manifest, without importing anything: Python, Keras and its
    backends, and each loaded plugin's distribution with the distributions it requires
    (a plugin brings its own libraries; the core names none of them)."""
    from kplug.plugins import plugins

    out = {"python": platform.python_version()}
    names = ["kplug", "keras", "numpy", "tensorflow", "jax"]
    for info in plugins():
        if not info.error and info.distribution not in ("(registered)", "?"):
            names.extend([info.distribution, *_requirements(info.distribution)])
    for name in dict.fromkeys(names):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def _requirements(distribution: str) -> list[str]:
    """The distributions `distribution` requires, its extras' included (kplug's own
    TensorFlow stack is an extra); `versions` keeps those that are installed."""
    names = [re.match(r"[A-Za-z0-9._-]*", text).group().lower()
             for text in metadata.requires(distribution) or []]  # fmt: skip
    return [name for name in names if name]
