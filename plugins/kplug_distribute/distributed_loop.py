"""`DistributedLoop`: Keras `fit` / `evaluate` semantics for strategies where `fit` fails.

Keras 3 `model.fit` breaks under `MultiWorkerMirroredStrategy` (keras-team/keras#20585,
tensorflow/tensorflow#72388). The model's own `train_step` / `test_step` do work inside
`strategy.run`, so this loop runs them on a distributed dataset and drives the same
callbacks in the same order as `fit` (train/epoch/batch hooks, `History`, the progress
bar, early stopping, backups): the loss, metrics and optimizer are the compiled ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class DistributedLoop:
    """Trains and evaluates a compiled Keras model under a `tf.distribute.Strategy`.

    Args:
        strategy: the `tf.distribute.Strategy` whose scope built and compiled `model`.
        model: the compiled Keras model.
    """

    def __init__(self, strategy: Any, model: Any):
        self.strategy = strategy
        self.model = model
        self._train_function = None
        self._test_function = None

    def fit(
        self,
        train: Callable[[int], Any],
        *,
        epochs: int,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation: Any = None,
        validation_steps: int | None = None,
        callbacks: list[Any] = (),
        verbose: Any = "auto",
    ) -> Any:
        """Like `model.fit(train(initial_epoch), ...)`; returns the `History`.

        Args:
            train: the batched training data from a given epoch on: `train(e)`. It is
                called once the callbacks have begun, so that a restored backup's epoch
                (`BackupAndRestore`) also resumes the data order.
            steps_per_epoch: batches per epoch, on one iterator that runs across epochs
                (an endless stream); None: each epoch is one pass over `train(e)`.
        """
        import keras

        model = self.model
        steps = steps_per_epoch or _batches(train(initial_epoch))
        callbacks = keras.callbacks.CallbackList(
            list(callbacks),
            add_history=True,
            add_progbar=verbose != 0,
            verbose=1 if verbose == "auto" else verbose,
            epochs=epochs,
            steps=steps,
            model=model,
        )
        self._build(train(initial_epoch))
        model.stop_training = False
        callbacks.on_train_begin()
        # BackupAndRestore sets `_initial_epoch` when it restores a backup, as in `fit`.
        initial_epoch = getattr(model, "_initial_epoch", None) or initial_epoch
        distributed = self.strategy.experimental_distribute_dataset(train(initial_epoch))
        iterator = iter(distributed) if steps_per_epoch else None
        training_logs = None
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            if not steps_per_epoch:
                iterator = iter(distributed)
            self._run_epoch(iterator, steps, callbacks, train=True)
            epoch_logs = self._results()
            if validation is not None:
                val_logs = self.evaluate(validation, steps=validation_steps, callbacks=callbacks)
                epoch_logs.update({f"val_{name}": value for name, value in val_logs.items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            training_logs = epoch_logs
            if model.stop_training:
                break
        callbacks.on_train_end(logs=training_logs)
        return next(c for c in callbacks.callbacks if isinstance(c, keras.callbacks.History))

    def evaluate(
        self, dataset: Any, *, steps: int | None = None, callbacks: Any = None
    ) -> dict[str, float]:
        """Like `model.evaluate(dataset, steps=steps, return_dict=True)`."""
        import keras

        if callbacks is None:
            callbacks = keras.callbacks.CallbackList(model=self.model, steps=steps, verbose=0)
        self._build(dataset)
        self.model.reset_metrics()
        callbacks.on_test_begin()
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        self._run_epoch(iterator, steps or _batches(dataset), callbacks, train=False)
        logs = self._results()
        callbacks.on_test_end(logs)
        return logs

    # -----------------------------------------------------------------------------------

    def _run_epoch(self, iterator: Any, steps: int | None, callbacks: Any, train: bool) -> None:
        """`steps` batches, or until the data ends when `steps` is None (unknown size)."""
        import tensorflow as tf

        function = self._train_step() if train else self._test_step()
        begin = callbacks.on_train_batch_begin if train else callbacks.on_test_batch_begin
        end = callbacks.on_train_batch_end if train else callbacks.on_test_batch_end
        step = 0
        while steps is None or step < steps:
            begin(step)
            try:
                logs = function(iterator)
            except (StopIteration, tf.errors.OutOfRangeError):
                break
            end(step, logs)
            step += 1
            if train and self.model.stop_training:
                break

    def _train_step(self):
        if self._train_function is None:
            self._train_function = self._step_function(self.model.train_step)
        return self._train_function

    def _test_step(self):
        if self._test_function is None:
            self._test_function = self._step_function(self.model.test_step)
        return self._test_function

    def _step_function(self, step: Any):
        import tensorflow as tf

        strategy = self.strategy

        @tf.function
        def one_step(iterator):
            outputs = strategy.run(step, args=(next(iterator),))
            # Batch logs (progress bar) average this worker's replicas, without a
            # cross-worker collective per step; epoch logs are the global metrics.
            return {
                name: tf.reduce_mean(tf.stack(strategy.experimental_local_results(value)))
                for name, value in outputs.items()
            }

        return one_step

    def _build(self, dataset: Any) -> None:
        """Create the optimizer and metric variables in the strategy's scope, as `fit` does
        before its first step (variables cannot be created inside the step function)."""
        if self.model.optimizer is not None and self.model.optimizer.built:
            return
        batch = next(iter(dataset))
        with self.strategy.scope():
            self.model._symbolic_build(data_batch=batch)

    def _results(self) -> dict[str, float]:
        # Read in cross-replica context: the metric variables aggregate every replica of
        # every worker.
        return {name: _scalar(value) for name, value in self.model.get_metrics_result().items()}


def _batches(dataset: Any) -> int | None:
    cardinality = int(dataset.cardinality())
    return cardinality if cardinality >= 0 else None


def _scalar(value: Any) -> Any:
    array = np.asarray(value)
    return float(array) if array.ndim == 0 else array
