"""`quantize`: Keras 3 native weight quantization (`model.quantize`), for any Keras 3
model, keras-hub transformers included."""

from __future__ import annotations

import fnmatch
import warnings
from typing import Any, Literal

from pydantic import Field

import kplug
from kplug_compress.step import CompressionStep, StepConfig, require_keras_model


class QuantizeConfig(StepConfig):
    mode: Literal["int8", "int4", "float8"] = Field(
        "int8", description="int8 / int4 weights with per-channel scales, or float8"
    )
    layers: list[str] = Field(
        [],
        description="name patterns (fnmatch) of the layers to quantize, each of which "
        "must take the mode; empty: every layer that can",
    )


class Quantize(CompressionStep):
    """Quantizes the weights of the layers that implement Keras' `quantize` (Dense,
    EinsumDense, Embedding; convolutions and recurrent layers stay float)."""

    name = "quantize"

    def compress(self, model: Any, ctx: kplug.RunContext) -> tuple[Any, dict[str, Any]]:
        require_keras_model(model, self.name)
        mode, patterns = self.config.mode, self.config.layers
        leaves = [layer for layer in model._flatten_layers(include_self=False)
                  if not list(layer._flatten_layers(include_self=False))]  # fmt: skip
        chosen = self._choose(leaves, patterns)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.quantize(mode, filters=lambda layer: any(layer is c for c in chosen))
        except ValueError as error:
            raise kplug.KplugError(f"quantize {mode}: {error}") from None
        done = [layer.name for layer in chosen if _quantization_mode(layer) == mode]
        refused = {layer.name: _reason(layer, caught) for layer in chosen
                   if _quantization_mode(layer) != mode}  # fmt: skip
        if (refused and patterns) or not done:
            listing = "; ".join(f"{name}: {reason}" for name, reason in refused.items())
            raise kplug.KplugError(
                f"quantize {mode}: these layers cannot take {mode}: {listing or 'none can'}. "
                f"{_SUPPORT}"
            )
        return model, {"mode": mode, "quantized_layers": done, "skipped": refused}

    def _choose(self, leaves: list[Any], patterns: list[str]) -> list[Any]:
        mode = self.config.mode
        if not patterns:
            return [layer for layer in leaves if _implements_quantize(layer)]
        unmatched = [p for p in patterns if not any(_match(layer, [p]) for layer in leaves)]
        if unmatched:
            names = ", ".join(layer.name for layer in leaves if layer.weights)
            raise kplug.KplugError(f"quantize: layers {unmatched} match no layer; layers: {names}")
        chosen = [layer for layer in leaves if _match(layer, patterns)]
        refused = [f"{layer.name} ({type(layer).__name__})"
                   for layer in chosen if not _implements_quantize(layer)]  # fmt: skip
        if refused:
            raise kplug.KplugError(
                f"quantize {mode}: layers {', '.join(refused)} cannot take {mode}: Keras does "
                f"not quantize that layer type. {_SUPPORT}"
            )
        return chosen


_SUPPORT = (
    "Keras quantizes Dense and EinsumDense (int8, int4, float8) and Embedding (int8, int4); "
    "choose other layers with `layers:` or another mode, or use the TF-MOT steps (qat, "
    "then tflite int8) for convolutions."
)


def _match(layer: Any, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(layer.name, pattern) for pattern in patterns)


def _implements_quantize(layer: Any) -> bool:
    import keras

    return type(layer).quantize is not keras.layers.Layer.quantize


def _quantization_mode(layer: Any) -> str | None:
    return getattr(layer.dtype_policy, "quantization_mode", None)


def _reason(layer: Any, caught: list[warnings.WarningMessage]) -> str:
    for warning in caught:
        if type(layer).__name__ in str(warning.message) or "mode" in str(warning.message):
            return str(warning.message).splitlines()[0]
    return "not quantized"
