"""Several JAX processes (hosts) in one `jax_data_parallel` run.

A process joins a multi-process run when Keras' own variables are set, as
`keras.distribution.initialize()` reads them (`kplug launch --workers N` sets them on one
machine; on a cluster, set them on each host):

- `KERAS_DISTRIBUTION_JOB_ADDRESSES`: `host:port` of process 0 (the coordinator), or every
  process' address, comma-separated, the coordinator first;
- `KERAS_DISTRIBUTION_NUM_PROCESSES`: how many processes;
- `KERAS_DISTRIBUTION_PROCESS_ID`: this process, 0 to N-1 (0 keeps the run directory).

Then JAX sees every process' devices, the strategy's mesh spans them all, and each process
reads only its share of every global batch (`array_batches`' `share`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import kplug

JOB_ADDRESSES_ENV = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES_ENV = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_ENV = "KERAS_DISTRIBUTION_PROCESS_ID"


@dataclass(frozen=True)
class Processes:
    """This process' place among the processes of a run.

    Args:
        index: this process, 0 to count-1 (0 is the chief: it keeps the run directory).
        count: processes in the run.
        coordinator: process 0's `host:port`, or None for a single process.
    """

    index: int = 0
    count: int = 1
    coordinator: str | None = None

    @property
    def is_chief(self) -> bool:
        return self.index == 0


SINGLE = Processes()


def processes_from_environment() -> Processes:
    """The processes Keras' variables describe; one process when they are not set.

    Raises:
        kplug.RunError: a variable that is missing beside the others or malformed.
    """
    addresses = os.environ.get(JOB_ADDRESSES_ENV, "").strip()
    if not addresses:
        return SINGLE
    count = _integer(NUM_PROCESSES_ENV, minimum=1)
    index = _integer(PROCESS_ID_ENV, minimum=0)
    if index >= count:
        raise kplug.RunError(
            f"{PROCESS_ID_ENV}={index} is out of range for {NUM_PROCESSES_ENV}={count}; give "
            f"each process an id from 0 to {count - 1}."
        )
    listed = [a.strip() for a in addresses.split(",")]
    if len(listed) > 1 and len(listed) != count:
        raise kplug.RunError(
            f"{JOB_ADDRESSES_ENV} lists {len(listed)} addresses but {NUM_PROCESSES_ENV} is "
            f"{count}; give the coordinator's host:port alone, or one address per process."
        )
    host, _, port = listed[0].rpartition(":")
    if not host or not port.isdigit():
        raise kplug.RunError(
            f"{JOB_ADDRESSES_ENV}: {listed[0]!r} is not a host:port address (process 0, the "
            "coordinator)."
        )
    return Processes(index=index, count=count, coordinator=listed[0])


def _integer(name: str, minimum: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text.isdigit() or int(text) < minimum:
        raise kplug.RunError(
            f"{JOB_ADDRESSES_ENV} is set, so this is one process of a multi-process JAX run, "
            f"but {name} is {text or 'not set'!r}; set it to an integer >= {minimum}."
        )
    return int(text)


def join(processes: Processes) -> None:
    """Connect this process to the others (`keras.distribution.initialize`) before JAX
    runs anything; nothing for a single process or one already connected."""
    if processes.count == 1:
        return
    import jax
    import keras

    if jax.distributed.is_initialized():
        return
    # The CPU client needs a cross-process collectives implementation: gloo (JAX 0.10's
    # default; a release whose default is none would fail in the first all-reduce).
    if jax.config.values.get("jax_cpu_collectives_implementation") in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        keras.distribution.initialize(processes.coordinator, processes.count, processes.index)
    except RuntimeError as error:
        raise kplug.RunError(
            f"JAX process {processes.index} of {processes.count} could not join the "
            f"coordinator at {processes.coordinator}: {str(error).splitlines()[0]} Check "
            f"that process 0 runs there and every process has the same {NUM_PROCESSES_ENV}."
        ) from error
