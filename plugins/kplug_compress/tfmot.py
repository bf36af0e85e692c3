"""TF-MOT steps: the import, the shared bridge-wrap-fine-tune-strip flow, layer wrapping.

tensorflow-model-optimization 0.8.x sets `TF_USE_LEGACY_KERAS=1` when it is imported and
then works on `tf_keras`. kplug's own code uses `import keras` (Keras 3) and never
`tf.keras`, so the only leak that matters is the environment variable: child processes
(multi-worker runs, `kplug` subprocesses) would inherit it. It is restored right after
the import; TF-MOT keeps the `tf_keras` module it already bound.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import kplug
from kplug_compress.bridge import to_keras, to_tf_keras
from kplug_compress.step import (
    CompressionStep,
    compile_keras,
    compile_tf_keras,
    fine_tune,
    require_keras_model,
)


def import_tfmot() -> ModuleType:
    """`tensorflow_model_optimization`, imported with the environment left as it was."""
    before = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        import tensorflow_model_optimization as tfmot
    finally:
        if before is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = before
    return tfmot


class TFMOTStep(CompressionStep):
    """A compression step that runs TF-MOT on the bridged tf_keras model.

    `compress` bridges the Keras 3 model to tf_keras, lets the subclass wrap the chosen
    layers (`wrap`), fine-tunes with the subclass' callbacks, strips the wrappers and
    bridges the result back to Keras 3 (unless `returns_tf_keras`, as QAT does: its
    fake-quantization layers exist only in tf_keras, and the TFLite converter takes them).
    """

    returns_tf_keras = False

    def compress(self, model: Any, ctx: kplug.RunContext) -> tuple[Any, dict[str, Any]]:
        tfmot = import_tfmot()
        require_keras_model(model, self.name)
        legacy = to_tf_keras(model, step=self.name)
        wrapped, details = self.wrap(legacy, tfmot, ctx)
        compile_tf_keras(wrapped, ctx, self.config.learning_rate)
        fine_tune(wrapped, self.config, ctx, callbacks=self.callbacks(tfmot))
        final = self.strip(wrapped, tfmot)
        details.update(self.facts(final))
        if self.returns_tf_keras:
            return final, details
        result = to_keras(final, step=self.name)
        compile_keras(result, ctx, None)
        return result, details

    def wrap(
        self, model: Any, tfmot: ModuleType, ctx: kplug.RunContext
    ) -> tuple[Any, dict[str, Any]]:
        """The model with TF-MOT wrappers on the chosen layers, and facts for the report."""
        raise NotImplementedError

    def callbacks(self, tfmot: ModuleType) -> list[Any]:
        return []

    def strip(self, model: Any, tfmot: ModuleType) -> Any:
        return model

    def facts(self, model: Any) -> dict[str, Any]:
        return {}


def wrap_layers(model: Any, chosen: list[Any], wrap: Any) -> Any:
    """A tf_keras clone of `model` with `wrap(layer)` in place of each chosen layer; the
    other layers (and so their weights) are reused as they are."""
    import tf_keras

    chosen_ids = {id(layer) for layer in chosen}
    return tf_keras.models.clone_model(
        model, clone_function=lambda layer: wrap(layer) if id(layer) in chosen_ids else layer
    )
