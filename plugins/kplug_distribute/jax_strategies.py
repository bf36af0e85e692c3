"""The JAX strategies: `keras.distribution` DataParallel and ModelParallel.

Layout rules for `jax_model_parallel` come from two places, later ones winning: plugins
implementing the `layout_rules` hook for the recipe's architecture (a transformers plugin
knows where its attention and feed-forward kernels are), then the recipe's
`strategy.layouts`.

`jax_data_parallel` also runs over several processes (hosts): see `jax_processes`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveInt, field_validator

import kplug
from kplug import RunDirectory, count_examples
from kplug_distribute.jax_processes import SINGLE, Processes, join, processes_from_environment

log = logging.getLogger("kplug")

MESH_AXES = ("batch", "model")


class DataParallelConfig(kplug.Config):
    devices: PositiveInt | None = Field(
        None, description="use the first N devices of keras.distribution.list_devices(); "
        "null: all (on CPU: XLA_FLAGS=--xla_force_host_platform_device_count=N)"
    )  # fmt: skip


class ModelParallelConfig(kplug.Config):
    mesh: tuple[PositiveInt, PositiveInt] | None = Field(
        None, description="device mesh shape (batch, model); null: (1, all devices)"
    )
    layouts: dict[str, list[str | None]] = Field(
        default_factory=dict,
        description="regex on variable paths -> a mesh axis (batch, model) or null per "
        "dimension, e.g. {'dense.*kernel': [null, model]}; unmatched variables are replicated",
    )

    @field_validator("layouts")
    @classmethod
    def _known_axes(cls, value: dict[str, list[str | None]]) -> dict[str, list[str | None]]:
        for pattern, axes in value.items():
            unknown = [a for a in axes if a is not None and a not in MESH_AXES]
            if unknown:
                raise ValueError(
                    f"layout {pattern!r} names unknown mesh axes {unknown}; use batch, model "
                    "or null"
                )
        return value


def estimate(config: Any, facts: dict) -> dict[str, Any]:
    mesh = getattr(config, "mesh", None)
    replicas = mesh[0] if mesh else getattr(config, "devices", None)
    if replicas:
        return {"replicas": replicas}
    return {"replicas_note": "all JAX devices, counted at run time"}


class JaxStrategy(kplug.Strategy):
    """Keras `fit` under a `keras.distribution.Distribution`, set for the whole process.

    Args:
        name: the registered strategy name.
        distribution: the `keras.distribution.Distribution`.
        replicas: how many ways each global batch is split.
        processes: this process' place among the run's processes (hosts); each reads
            only its share of every global batch, and only process 0 keeps the run.
    """

    training_loop = "fit"

    def __init__(self, name: str, distribution: Any, replicas: int, processes: Processes = SINGLE):
        import keras

        self.name = name
        self.distribution = distribution
        self.num_replicas = replicas
        self.processes = processes
        self.is_chief = processes.is_chief
        self.temporary_directory: Path | None = None
        if processes.count == 1:
            # Global, not only a scope: Keras reads it in fit/evaluate to shard each batch.
            keras.distribution.set_distribution(distribution)
        # Over several processes, only in scope() and in fit/evaluate: a variable made
        # under it is a collective (JAX checks every process puts the same value), and
        # process 0 alone saves the model, which makes a throwaway optimizer.

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        try:
            with self.distribution.scope():
                yield
        except ValueError as error:
            # jax's IndivisibleError (a ValueError): "... should evenly divide the shape".
            if type(error).__name__ != "IndivisibleError" and "divisible" not in str(error):
                raise
            mesh = dict(zip(MESH_AXES, self.distribution.device_mesh.shape, strict=True))
            raise kplug.RunError(
                f"{self.name}: a layout rule shards a weight over a mesh axis its size does "
                f"not divide (mesh {mesh}): "
                f"{str(error).splitlines()[0]} Change strategy.layouts (or strategy.mesh) so "
                "each sharded dimension is a multiple of its axis' device count, or give that "
                "weight null (replicated) there."
            ) from error

    def run_directory(self, runs_root: str | os.PathLike, name: str) -> RunDirectory:
        """Process 0's run directory; the other processes write into a temporary one."""
        if self.processes.count == 1:
            return super().run_directory(runs_root, name)
        from kplug_distribute.multi_worker_strategy import process_run_directory

        return process_run_directory(self, runs_root, name, f"process{self.processes.index}")

    def _dataset(self, split: Any, batch_size: int, training: bool, **kwargs: Any) -> Any:
        from kplug_distribute.input_pipeline import make_dataset

        if batch_size % self.num_replicas:
            raise kplug.RunError(
                f"data.batch_size {batch_size} does not split evenly over {self.num_replicas} "
                f"devices; use a multiple of {self.num_replicas}."
            )
        # A last partial batch that does not split over the devices cannot be sharded.
        remainder = (count_examples(split) or 0) % batch_size
        drop = bool(remainder % self.num_replicas)
        if drop:
            log.warning(
                "dropping the last %d examples of a split: a batch of %d does not split over "
                "%d devices", remainder, remainder, self.num_replicas,
            )  # fmt: skip
        if self.processes.count > 1:
            return self._process_share(split, batch_size, training, drop, **kwargs)
        return make_dataset(split, batch_size=batch_size, training=training,
                            drop_remainder=drop, **kwargs)  # fmt: skip

    def _process_share(
        self, split: Any, batch_size: int, training: bool, drop: bool, **kwargs: Any
    ) -> Any:
        """This process' part of every batch, a `PyDataset`: Keras assembles the global
        batch from the processes' parts (`jax.make_array_from_process_local_data`). Not
        `tf.data`, which Keras would read whole on every process and then shard."""
        from kplug_distribute.array_batches import array_batches, tensorflow_installed
        from kplug_distribute.input_pipeline import tensorflow_order

        if not kplug.is_array_split(split) and not hasattr(split, "gather"):
            raise kplug.RunError(
                f"{self.name} over {self.processes.count} processes reads NumPy splits and "
                "streamed (prepared) splits; this dataset gives a tf.data pipeline. Prepare "
                "it (data.stream: true) or run one process."
            )
        # Every process shuffles alike, as one process would on this install.
        order = tensorflow_order if tensorflow_installed() else None
        share = (self.processes.index, self.processes.count)
        return array_batches(split, batch_size=batch_size, training=training,
                             drop_remainder=drop, share=share, epoch_order=order,
                             **kwargs)  # fmt: skip

    def fit(
        self,
        model,
        data,
        *,
        batch_size,
        epochs,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        callbacks=(),
        verbose="auto",
        shuffle=True,
        seed=0,
        start_step=None,
    ):
        from kplug_distribute.input_pipeline import steps_per_epoch as batches

        drop = bool((count_examples(data.train) or 0) % batch_size % self.num_replicas)
        steps = steps_per_epoch or batches(data.train, batch_size, drop)
        if start_step is None:
            start_step = initial_epoch * (steps or 0)
        train = self._dataset(data.train, batch_size, True, shuffle=shuffle, seed=seed,
                              start_step=start_step)  # fmt: skip
        validation = None
        if data.validation is not None:
            validation = self._dataset(data.validation, batch_size, False)
        with self._distributed():
            history = model.fit(
                train,
                validation_data=validation,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps,
                validation_steps=validation_steps,
                callbacks=list(callbacks),
                verbose=verbose,
                shuffle=False,
            )
        if self.processes.count > 1:
            from kplug_distribute.fit_strategy import weights_digest

            log.info("final weights sha256 %s", weights_digest(model))
        return history.history

    def evaluate(self, model, split, *, batch_size, steps=None):
        dataset = self._dataset(split, batch_size, False)
        with self._distributed():
            return model.evaluate(dataset, steps=steps, return_dict=True, verbose=0)

    def _distributed(self) -> contextlib.AbstractContextManager:
        if self.processes.count == 1:
            return contextlib.nullcontext()  # set globally
        return self.distribution.scope()

    def describe(self) -> dict[str, Any]:
        mesh = self.distribution.device_mesh
        return {
            "name": self.name,
            "replicas": self.num_replicas,
            "devices": [str(d) for d in mesh.devices.flatten()],
            "mesh": dict(zip(mesh.axis_names, mesh.shape, strict=True)),
            "training_loop": self.training_loop,
            **self._processes_description(),
        }

    def _processes_description(self) -> dict[str, Any]:
        if self.processes.count == 1:
            return {}
        return {
            "processes": self.processes.count,
            "process": self.processes.index,
            "coordinator": self.processes.coordinator,
            "chief": self.is_chief,
        }


def _devices(count: int | None) -> list[Any]:
    import keras

    devices = keras.distribution.list_devices()
    if count is None:
        return devices
    if count > len(devices):
        raise kplug.RunError(
            f"{count} devices asked for but JAX has {len(devices)} ({', '.join(devices)}). On "
            f"CPU start with XLA_FLAGS=--xla_force_host_platform_device_count={count}."
        )
    return devices[:count]


def make_data_parallel(config: DataParallelConfig, ctx: kplug.RunContext) -> JaxStrategy:
    import keras

    processes = processes_from_environment()
    join(processes)
    if processes.count > 1 and config.devices is not None:
        raise kplug.RunError(
            f"strategy.devices: {config.devices} with {processes.count} JAX processes: the "
            "mesh spans every process' devices; remove strategy.devices (set the devices of "
            "each process with XLA_FLAGS or CUDA_VISIBLE_DEVICES)."
        )
    devices = _devices(config.devices)
    distribution = keras.distribution.DataParallel(devices=devices)
    # Each process reads its own share of every batch (JaxStrategy._process_share).
    distribution.auto_shard_dataset = processes.count == 1
    return JaxStrategy("jax_data_parallel", distribution, replicas=len(devices),
                       processes=processes)  # fmt: skip


def make_model_parallel(config: ModelParallelConfig, ctx: kplug.RunContext) -> JaxStrategy:
    import keras

    if processes_from_environment().count > 1:
        raise kplug.RunError(
            "jax_model_parallel runs in one process (its devices: XLA_FLAGS or the GPUs of "
            "the machine); over several processes use jax_data_parallel, or unset the "
            "KERAS_DISTRIBUTION_* variables."
        )
    devices = _devices(None)
    shape = config.mesh or (1, len(devices))
    if shape[0] * shape[1] != len(devices):
        raise kplug.RunError(
            f"strategy.mesh {list(shape)} needs {shape[0] * shape[1]} devices but JAX has "
            f"{len(devices)}; make batch x model equal the device count."
        )
    mesh = keras.distribution.DeviceMesh(shape=shape, axis_names=MESH_AXES, devices=devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    for pattern, axes in layout_rules(ctx.recipe).items():
        layout_map[pattern] = tuple(axes)
    distribution = keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
    return JaxStrategy("jax_model_parallel", distribution, replicas=shape[0])


def layout_rules(recipe: kplug.Recipe) -> dict[str, list[str | None]]:
    """The layout rules of a recipe: plugins' `layout_rules` for its architecture, then the
    recipe's `strategy.layouts` (which win)."""
    from kplug import plugin_manager

    rules: dict[str, list[str | None]] = {}
    answers = plugin_manager().hook.layout_rules(
        architecture=recipe.model.name, config=recipe.model.config
    )
    for answer in reversed(answers):  # pluggy calls the last registered first
        rules.update({pattern: list(axes) for pattern, axes in (answer or {}).items()})
    strategy = recipe.strategy.config
    rules.update(getattr(strategy, "layouts", {}) or {})
    return rules
