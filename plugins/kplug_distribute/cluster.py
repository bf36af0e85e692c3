"""Multi-worker clusters: `TF_CONFIG` read, checked and explained before TensorFlow sees it.

TensorFlow's own failures on a bad `TF_CONFIG` are a C++ abort or a hang on a port that
never answers; these checks turn the common mistakes into one-paragraph errors.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any

import kplug

# Jobs whose tasks train (hold replicas); `ps` and `evaluator` do not.
TRAINING_JOBS = ("chief", "worker")


@dataclass(frozen=True)
class Cluster:
    """A checked `TF_CONFIG`.

    Args:
        spec: job name -> list of `host:port` addresses.
        task_type: this process's job (`worker`, `chief`).
        task_index: this process's index in its job.
        source: where the configuration came from, for messages.
    """

    spec: dict[str, list[str]]
    task_type: str
    task_index: int
    source: str

    @property
    def address(self) -> str:
        return self.spec[self.task_type][self.task_index]

    @property
    def num_workers(self) -> int:
        return sum(len(self.spec.get(job, [])) for job in TRAINING_JOBS)

    @property
    def is_chief(self) -> bool:
        """TensorFlow's rule: the `chief` task, or worker 0 when there is no chief job."""
        if "chief" in self.spec:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def task(self) -> str:
        return f"{self.task_type} {self.task_index}"

    def to_tf_config(self) -> dict[str, Any]:
        return {"cluster": self.spec, "task": {"type": self.task_type, "index": self.task_index}}


def cluster_from(recipe_cluster: dict[str, Any] | None) -> Cluster | None:
    """The cluster of the recipe's `strategy.cluster`, else of `TF_CONFIG`; None if neither."""
    if recipe_cluster:
        return parse_tf_config(recipe_cluster, "strategy.cluster")
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise kplug.RunError(
            f"TF_CONFIG is not valid JSON ({error.msg} at character {error.pos}); set it to "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}.'
        ) from None
    return parse_tf_config(data, "TF_CONFIG")


def cluster_from_slurm(port_base: int) -> Cluster:
    """The cluster of this SLURM job (one task per worker), by TensorFlow's
    `SlurmClusterResolver`."""
    if "SLURM_JOB_ID" not in os.environ:
        raise kplug.RunError(
            "strategy.resolver is slurm but this process is not part of a SLURM job (no "
            "SLURM_JOB_ID); start one task per worker with `srun kplug run ...`, or use "
            "resolver: tf_config with TF_CONFIG set."
        )
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=port_base)
    task = {"type": resolver.task_type, "index": resolver.task_id}
    return parse_tf_config({"cluster": resolver.cluster_spec().as_dict(), "task": task}, "SLURM")


def parse_tf_config(data: Any, source: str) -> Cluster:
    """Check a `TF_CONFIG` mapping: a cluster of `host:port` lists and this process's task."""
    example = '{"type": "worker", "index": 0}'
    if not isinstance(data, dict):
        raise kplug.RunError(f"{source} must be a JSON object with `cluster` and `task`.")
    spec = data.get("cluster")
    if not isinstance(spec, dict) or not spec:
        raise kplug.RunError(
            f"{source} has no `cluster`: give every job's addresses, e.g. "
            '"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}.'
        )
    for job, addresses in spec.items():
        if not isinstance(addresses, list) or not addresses:
            raise kplug.RunError(f"{source}: cluster.{job} must be a list of host:port addresses.")
        for address in addresses:
            _check_address(address, f"{source}: cluster.{job}")
    if not any(job in spec for job in TRAINING_JOBS):
        raise kplug.RunError(f"{source}: the cluster has no `worker` or `chief` job.")
    task = data.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise kplug.RunError(
            f"{source} has no `task`: each process must say which cluster member it is, "
            f'e.g. "task": {example}.'
        )
    task_type, task_index = task["type"], task["index"]
    if task_type not in spec:
        raise kplug.RunError(
            f"{source}: task type {task_type!r} is not a job of the cluster "
            f"({', '.join(sorted(spec))})."
        )
    if isinstance(task_index, bool) or not isinstance(task_index, int):
        raise kplug.RunError(f"{source}: task index must be an integer, got {task_index!r}.")
    if not 0 <= task_index < len(spec[task_type]):
        raise kplug.RunError(
            f"{source}: task index {task_index} is out of range: job {task_type!r} has "
            f"{len(spec[task_type])} address(es), indices 0..{len(spec[task_type]) - 1}."
        )
    return Cluster({k: list(v) for k, v in spec.items()}, task_type, task_index, source)


def _check_address(address: Any, where: str) -> None:
    host, _, port = str(address).rpartition(":")
    if not isinstance(address, str) or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise kplug.RunError(f"{where}: {address!r} is not a host:port address.")


def check_port_free(cluster: Cluster) -> None:
    """This task's own port must be free: its gRPC server listens there."""
    host, _, port = cluster.address.rpartition(":")
    bind_host = host if host in ("127.0.0.1", "localhost", "::1") else ""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As gRPC does: a port whose old connections linger in TIME_WAIT (a restarted
        # worker's) is free; only a live listener makes the bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind_host, int(port)))
        except OSError as error:
            raise kplug.RunError(
                f"port {port} of {cluster.task} ({cluster.address}, from {cluster.source}) is "
                f"in use ({error.strerror}); stop the process holding it or give this task "
                "another port."
            ) from None


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports that were free a moment ago (the OS picks them)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
