"""Experiment tracking: TensorBoard (`train.tensorboard: true`) with the run's recipe as
HParams, so that TensorBoard's HParams tab compares runs by their settings."""

from __future__ import annotations

from typing import Any


def tensorboard_callbacks(ctx: Any) -> list[Any]:
    """The Keras TensorBoard callback (train/ and validation/ event files under
    RUN_DIR/tensorboard) after writing the recipe's flattened keys as HParams."""
    import keras

    folder = ctx.directory / "tensorboard"
    write_hparams(str(folder), hparams(ctx.recipe), ctx.directory.path.name)
    return [keras.callbacks.TensorBoard(log_dir=str(folder))]


def hparams(recipe: Any) -> dict[str, bool | int | float | str]:
    """The resolved recipe as dotted keys with scalar values (lists as their text)."""
    import yaml

    from kplug.cli.compare import flatten

    out: dict[str, bool | int | float | str] = {}
    for key, value in flatten(yaml.safe_load(recipe.to_yaml())).items():
        out[key] = value if isinstance(value, bool | int | float | str) else str(value)
    return out


def write_hparams(folder: str, values: dict[str, Any], trial: str) -> None:
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    with tf.summary.create_file_writer(folder).as_default():
        hp.hparams(values, trial_id=trial)
