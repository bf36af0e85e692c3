"""The `tf.distribute` strategies: their recipe parameters and factories."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt

import kplug
from kplug_distribute.fit_strategy import FitStrategy

LOGICAL_CPU_HELP = (
    "split the CPU into this many logical devices before TensorFlow starts (mirrored "
    "training without GPUs, tests); null: the devices as they are"
)


class OneDeviceConfig(kplug.Config):
    device: str = Field("/cpu:0", description="the device, e.g. /gpu:0 or /cpu:0")


class MirroredConfig(kplug.Config):
    devices: list[str] | None = Field(
        None, description="devices to replicate on, e.g. [/gpu:0, /gpu:1]; null: all GPUs, "
        "else all CPU devices"
    )  # fmt: skip
    cross_device_ops: Literal["auto", "nccl", "hierarchical_copy", "reduce_to_one"] = Field(
        "auto", description="how gradients are summed across devices; auto: TensorFlow's choice"
    )
    logical_cpu_devices: PositiveInt | None = Field(None, description=LOGICAL_CPU_HELP)


class MultiWorkerConfig(kplug.Config):
    cluster: dict[str, Any] | None = Field(
        None, description="the TF_CONFIG of this process ({cluster: {worker: [host:port, ...]}, "
        "task: {type: worker, index: i}}); null: the TF_CONFIG environment variable, or one "
        "local worker when it is unset"
    )  # fmt: skip
    resolver: Literal["tf_config", "slurm"] = Field(
        "tf_config", description="where the cluster comes from: TF_CONFIG (or `cluster`), or "
        "the SLURM job this process runs in (TensorFlow's SlurmClusterResolver)"
    )  # fmt: skip
    port_base: PositiveInt = Field(8888, description="slurm: first port of the workers")
    communication: Literal["auto", "ring", "nccl"] = Field(
        "auto", description="collective implementation: ring (gRPC), nccl (GPUs) or auto"
    )
    backup_dir: str | None = Field(
        None, description="folder (shared by all workers) for the per-epoch backup that lets a "
        "restarted cluster resume; null: no backup unless KPLUG_BACKUP_DIR is set (kplug "
        "launch --restart-failed sets it)"
    )  # fmt: skip
    logical_cpu_devices: PositiveInt | None = Field(None, description=LOGICAL_CPU_HELP)


class TPUConfig(kplug.Config):
    tpu: str = Field(
        "", description="TPU name or grpc:// address; empty: the TPU of this VM ('local' also)"
    )
    zone: str | None = Field(None, description="Cloud zone of a named TPU")
    project: str | None = Field(None, description="Cloud project of a named TPU")


def make_one_device(config: OneDeviceConfig, ctx: kplug.RunContext) -> FitStrategy:
    import tensorflow as tf

    from kplug_distribute.devices import check_devices

    (device,) = check_devices([config.device])
    return FitStrategy("one_device", tf.distribute.OneDeviceStrategy(device))


def make_mirrored(config: MirroredConfig, ctx: kplug.RunContext) -> FitStrategy:
    import tensorflow as tf

    from kplug_distribute.devices import check_devices, split_cpu

    if config.logical_cpu_devices:
        split_cpu(config.logical_cpu_devices)
    devices = config.devices
    if devices is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
    devices = check_devices(devices)
    return FitStrategy(
        "mirrored",
        tf.distribute.MirroredStrategy(devices, cross_device_ops=_cross_device_ops(config)),
    )


def _cross_device_ops(config: MirroredConfig) -> Any:
    if config.cross_device_ops == "auto":
        return None
    import tensorflow as tf

    return {
        "nccl": tf.distribute.NcclAllReduce,
        "hierarchical_copy": tf.distribute.HierarchicalCopyAllReduce,
        "reduce_to_one": tf.distribute.ReductionToOneDevice,
    }[config.cross_device_ops]()


def make_multi_worker(config: MultiWorkerConfig, ctx: kplug.RunContext):
    from kplug_distribute.cluster import check_port_free, cluster_from, cluster_from_slurm
    from kplug_distribute.multi_worker_strategy import MultiWorkerStrategy, backup_dir_from

    # Checked before TensorFlow starts: it aborts or hangs on these mistakes.
    if config.resolver == "slurm":
        cluster = cluster_from_slurm(config.port_base)
    else:
        cluster = cluster_from(config.cluster)
    if cluster is not None:
        check_port_free(cluster)
    import tensorflow as tf

    from kplug_distribute.devices import split_cpu

    if config.logical_cpu_devices:
        split_cpu(config.logical_cpu_devices)
    resolver = None
    if cluster is not None:
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(cluster.spec),
            task_type=cluster.task_type,
            task_id=cluster.task_index,
            rpc_layer="grpc",
        )
    implementation = {
        "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
        "ring": tf.distribute.experimental.CommunicationImplementation.RING,
        "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
    }[config.communication]
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=resolver,
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=implementation
        ),
    )
    return MultiWorkerStrategy(strategy, cluster, backup_dir_from(config.backup_dir))


def make_tpu(config: TPUConfig, ctx: kplug.RunContext) -> FitStrategy:
    import tensorflow as tf

    tried = config.tpu or "the local TPU of this VM"
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=config.tpu or None, zone=config.zone, project=config.project
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise kplug.RunError(
            f"no TPU found: TPUClusterResolver(tpu={config.tpu or None!r}, zone={config.zone!r}, "
            f"project={config.project!r}) looked for {tried} and failed ({_first_line(error)}). "
            "On a Cloud TPU VM leave strategy.tpu empty; for a TPU node give its name or "
            "grpc://address (and zone/project); without a TPU use strategy.name=default or "
            "mirrored."
        ) from None
    return FitStrategy("tpu", tf.distribute.TPUStrategy(resolver))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
