"""Registers the built-in distribution strategies and `kplug launch`.

Essential (`ESSENTIAL`): KPLUG_DISABLE_PLUGINS cannot leave it out, because it registers
the `default` strategy every recipe without `strategy:` runs on (see docs/plugins.md).
"""

from __future__ import annotations

import shutil
from typing import Any

import kplug
from kplug_distribute import jax_strategies, tf_strategies
from kplug_distribute.fit_strategy import FitStrategy

ESSENTIAL = True

TF = ("tensorflow",)
JAX = ("jax",)


def make_default(config: kplug.EmptyConfig, ctx: kplug.RunContext) -> FitStrategy:
    return FitStrategy(name="default")


def _mirrored_estimate(config: tf_strategies.MirroredConfig, facts: dict) -> dict[str, Any]:
    replicas = len(config.devices) if config.devices else config.logical_cpu_devices
    if replicas:
        return {"replicas": replicas}
    return {"replicas_note": "all GPUs (or CPU devices) of the machine, counted at run time"}


def _multi_worker_estimate(config: tf_strategies.MultiWorkerConfig, facts: dict) -> dict:
    import os

    from kplug_distribute.cluster import cluster_from

    if config.resolver == "slurm":
        workers = int(os.environ.get("SLURM_NTASKS", "1"))
        return {"workers": workers, "replicas": workers * (config.logical_cpu_devices or 1)}
    cluster = cluster_from(config.cluster)
    workers = cluster.num_workers if cluster else 1
    out: dict[str, Any] = {"workers": workers,
                           "replicas": workers * (config.logical_cpu_devices or 1)}  # fmt: skip
    if cluster:
        out.update(task=cluster.task, chief=cluster.is_chief)
    return out


@kplug.hookimpl
def add_hookspecs(plugin_manager):
    from kplug_distribute import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@kplug.hookimpl
def register_strategies(register):
    register(
        "default",
        make_default,
        summary="one device (the backend's default placement), Keras model.fit",
        estimate=lambda config, facts: {"replicas": 1},
    )
    register(
        "one_device",
        tf_strategies.make_one_device,
        config=tf_strategies.OneDeviceConfig,
        summary="tf.distribute.OneDeviceStrategy: everything on one named device",
        backends=TF,
        estimate=lambda config, facts: {"replicas": 1},
    )
    register(
        "mirrored",
        tf_strategies.make_mirrored,
        config=tf_strategies.MirroredConfig,
        summary="tf.distribute.MirroredStrategy: synchronous data parallel on the GPUs/CPUs "
        "of one machine, Keras model.fit",
        backends=TF,
        estimate=_mirrored_estimate,
    )
    register(
        "multi_worker",
        tf_strategies.make_multi_worker,
        config=tf_strategies.MultiWorkerConfig,
        summary="tf.distribute.MultiWorkerMirroredStrategy over TF_CONFIG workers (kplug "
        "launch, or kplug run on each node); kplug's distributed loop; resumes from its "
        "per-epoch backup with kplug launch --restart-failed",
        backends=TF,
        estimate=_multi_worker_estimate,
    )
    register(
        "tpu",
        tf_strategies.make_tpu,
        config=tf_strategies.TPUConfig,
        summary="tf.distribute.TPUStrategy on a Cloud TPU (TPUClusterResolver)",
        backends=TF,
    )
    register(
        "jax_data_parallel",
        jax_strategies.make_data_parallel,
        config=jax_strategies.DataParallelConfig,
        summary="keras.distribution.DataParallel: the batch split over JAX devices",
        backends=JAX,
        estimate=jax_strategies.estimate,
    )
    register(
        "jax_model_parallel",
        jax_strategies.make_model_parallel,
        config=jax_strategies.ModelParallelConfig,
        summary="keras.distribution.ModelParallel: weights sharded over a JAX device mesh "
        "by layout rules (recipe and plugins' layout_rules hook)",
        backends=JAX,
        estimate=jax_strategies.estimate,
    )


@kplug.hookimpl
def register_commands(register):
    from kplug_distribute.launch import add_arguments

    register(
        "launch",
        add_arguments,
        summary="run a multi_worker recipe as N local worker processes on 127.0.0.1",
    )


@kplug.hookimpl
def run_finished(run: kplug.RunContext, result: dict[str, Any]) -> None:
    # A non-chief worker's run directory was temporary; the chief's is the run.
    temporary = getattr(run.strategy, "temporary_directory", None)
    if temporary is not None:
        shutil.rmtree(temporary, ignore_errors=True)
