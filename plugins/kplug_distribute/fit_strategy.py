"""`FitStrategy`: a `tf.distribute` strategy (or none) driving Keras `model.fit`, and
`LoopStrategy`, the same with kplug's distributed loop where `fit` fails."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any

import kplug
from kplug_distribute import input_pipeline
from kplug_distribute.input_pipeline import make_dataset

log = logging.getLogger("kplug")


class FitStrategy(kplug.Strategy):
    """Trains with Keras `fit` under an optional `tf.distribute.Strategy`.

    Args:
        name: the registered strategy name, for the manifest.
        tf_strategy: a `tf.distribute.Strategy`, or None for the backend's default
            placement.
    """

    training_loop = "fit"

    def __init__(self, name: str, tf_strategy: Any = None):
        self.name = name
        self.tf_strategy = tf_strategy
        self.num_replicas = tf_strategy.num_replicas_in_sync if tf_strategy else 1

    def scope(self) -> contextlib.AbstractContextManager:
        return self.tf_strategy.scope() if self.tf_strategy else contextlib.nullcontext()

    def datasets(
        self,
        data,
        *,
        batch_size,
        steps_per_epoch=None,
        shuffle=True,
        seed=0,
        initial_epoch=0,
        start_step=None,
    ) -> tuple[Any, Any, int | None]:
        """The batched training stream, the validation batches and the steps per epoch."""
        sharded = self.tf_strategy is not None
        steps = steps_per_epoch or input_pipeline.steps_per_epoch(data.train, batch_size)
        if start_step is None:
            start_step = initial_epoch * (steps or 0)
        train = make_dataset(data.train, batch_size=batch_size, training=True, shuffle=shuffle,
                             seed=seed, start_step=start_step, sharded=sharded)  # fmt: skip
        validation = None
        if data.validation is not None:
            validation = make_dataset(
                data.validation, batch_size=batch_size, training=False, sharded=sharded
            )
        return train, validation, steps

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
        train, validation, steps = self.datasets(
            data, batch_size=batch_size, steps_per_epoch=steps_per_epoch, shuffle=shuffle,
            seed=seed, initial_epoch=initial_epoch, start_step=start_step,
        )  # fmt: skip
        history = model.fit(
            train,
            validation_data=validation,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            validation_steps=validation_steps,
            callbacks=list(callbacks),
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, seeded
        )
        return history.history

    def evaluate(self, model, split, *, batch_size, steps=None):
        dataset = make_dataset(
            split, batch_size=batch_size, training=False, sharded=self.tf_strategy is not None
        )
        return model.evaluate(dataset, steps=steps, return_dict=True, verbose=0)

    def describe(self) -> dict[str, Any]:
        devices = (
            list(self.tf_strategy.extended.worker_devices) if self.tf_strategy else ["default"]
        )
        return {
            "name": self.name,
            "replicas": self.num_replicas,
            "devices": devices,
            "training_loop": self.training_loop,
        }


class LoopStrategy(FitStrategy):
    """Like `FitStrategy`, but trains in kplug's `DistributedLoop` (same callbacks, loss,
    metrics and history as `fit`) for strategies under which Keras 3 `fit` fails."""

    training_loop = "distributed_loop"

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
        from kplug_distribute.distributed_loop import DistributedLoop

        _, validation, steps = self.datasets(
            data, batch_size=batch_size, steps_per_epoch=steps_per_epoch, shuffle=shuffle,
            seed=seed, initial_epoch=initial_epoch,
        )  # fmt: skip

        def train(first_epoch: int) -> Any:
            start = first_epoch * (steps or 0)
            if start_step is not None and first_epoch == initial_epoch:
                start = start_step
            return make_dataset(data.train, batch_size=batch_size, training=True,
                                shuffle=shuffle, seed=seed, start_step=start,
                                sharded=True)  # fmt: skip

        history = DistributedLoop(self.tf_strategy, model).fit(
            train,
            validation=validation,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            validation_steps=validation_steps,
            callbacks=[*callbacks, *self.extra_callbacks(model)],
            verbose=verbose,
        )
        log.info("final weights sha256 %s", weights_digest(model))
        return history.history

    def extra_callbacks(self, model) -> list[Any]:
        """Callbacks the strategy itself needs (backups); none by default."""
        return []

    def evaluate(self, model, split, *, batch_size, steps=None):
        from kplug_distribute.distributed_loop import DistributedLoop

        dataset = make_dataset(split, batch_size=batch_size, training=False, sharded=True)
        return DistributedLoop(self.tf_strategy, model).evaluate(dataset, steps=steps)


def weights_digest(model: Any) -> str:
    """A hash of the model's weights: workers in sync print the same one."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]
