"""`qat`: TF-MOT quantization-aware training, alone or preserving sparsity or clusters."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

from pydantic import Field

import kplug
from kplug_compress.step import FineTuneConfig, select_layers
from kplug_compress.tfmot import TFMOTStep, wrap_layers


class QATConfig(FineTuneConfig):
    preserve: Literal["none", "sparsity", "clusters", "sparsity_and_clusters"] = Field(
        "none",
        description="collaborative optimization: keep an earlier prune's zeros (PQAT), an "
        "earlier cluster's shared values (CQAT), or both (PCQAT)",
    )
    layers: list[str] = Field(
        [], description="name patterns (fnmatch) of the layers to quantize; empty: the whole model"
    )


class QAT(TFMOTStep):
    """Fine-tunes with fake quantization so that the int8 TFLite model keeps its accuracy.

    The result stays a tf_keras model (its quantization wrappers exist only there); export
    it with `tflite` (any mode) or `saved_model`, and put `qat` last.
    """

    name = "qat"
    returns_tf_keras = True

    def wrap(self, model: Any, tfmot: ModuleType, ctx: kplug.RunContext):
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_registry import (  # noqa: E501
            Default8BitQuantizeRegistry,
        )

        quantization = tfmot.quantization.keras
        if self.config.layers:
            registry = Default8BitQuantizeRegistry()
            chosen = select_layers(model, self.config.layers, registry.supports, self.name)
            annotated = wrap_layers(model, chosen, quantization.quantize_annotate_layer)
        else:
            annotated = quantization.quantize_annotate_model(model)
        try:
            wrapped = quantization.quantize_apply(annotated, self._scheme(tfmot))
        except (RuntimeError, ValueError) as error:
            raise kplug.KplugError(f"qat: TF-MOT cannot quantize this model: {error}") from None
        return wrapped, {"preserve": self.config.preserve}

    def _scheme(self, tfmot: ModuleType) -> Any:
        combine = tfmot.experimental.combine
        preserve = self.config.preserve
        if preserve == "sparsity":
            return combine.Default8BitPrunePreserveQuantizeScheme()
        if preserve in ("clusters", "sparsity_and_clusters"):
            return combine.Default8BitClusterPreserveQuantizeScheme(
                preserve_sparsity=preserve == "sparsity_and_clusters"
            )
        return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
