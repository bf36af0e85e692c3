"""`low_rank`: truncated-SVD factorization of Dense and 1x1 convolution kernels.

A kernel W (inputs x outputs) becomes A (inputs x r) then B (r x outputs), two layers of
the same kind: `<name>_lowrank_a` (no bias, no activation; a convolution keeps its
strides and padding) and `<name>_lowrank_b` (the original layer's options, bias and
activation). With W = U S V^T, A = U_r sqrt(S_r) and B = sqrt(S_r) V_r^T, the best rank-r
approximation. The factorized model is then fine-tuned.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import numpy as np
from pydantic import Field, PositiveInt, model_validator

import kplug
from kplug_compress.step import (
    CompressionStep,
    FineTuneConfig,
    compile_keras,
    fine_tune,
    require_keras_model,
)

DEFAULT_ENERGY = 0.9
FACTORIZABLE = ("Dense", "Conv1D", "Conv2D")


class LowRankConfig(FineTuneConfig):
    rank: PositiveInt | None = Field(
        None, description="the rank of every factorized kernel (capped by its dimensions)"
    )
    energy: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="instead of rank: the smallest rank keeping this fraction of the sum of "
        f"squared singular values; {DEFAULT_ENERGY} when neither is given",
    )
    layers: list[str] = Field(
        [],
        description="name patterns (fnmatch) of the layers to factorize; empty: every "
        "Dense and 1x1 convolution",
    )

    @model_validator(mode="after")
    def _rank_or_energy(self):
        if self.rank is not None and self.energy is not None:
            raise ValueError("give rank or energy, not both")
        return self


class LowRank(CompressionStep):
    """Factorizes the chosen kernels where that saves parameters, then fine-tunes."""

    name = "low_rank"

    def compress(self, model: Any, ctx: kplug.RunContext) -> tuple[Any, dict[str, Any]]:
        import keras

        require_keras_model(model, self.name)
        if type(model).__name__ not in ("Functional", "Sequential") or not model.outputs:
            raise kplug.KplugError(
                f"low_rank rebuilds Sequential and functional models; {model.name} is a "
                f"{type(model).__name__}."
            )
        plans, skipped = self._plan(model)
        if not plans:
            raise kplug.KplugError(f"low_rank: no layer to factorize ({_listing(skipped)})")
        functional = keras.Model(model.inputs, model.outputs, name=model.name)
        factorized = _Rebuild(plans).clone(functional)
        compile_keras(factorized, ctx, self.config.learning_rate)
        fine_tune(factorized, self.config, ctx)
        details = {
            "layers": {name: plan.facts() for name, plan in plans.items()},
            "skipped": skipped,
            "dense_parameters_before": _dense_parameters(model),
            "dense_parameters_after": _dense_parameters(factorized),
        }
        return factorized, details

    def _plan(self, model: Any) -> tuple[dict[str, _Factorization], dict[str, str]]:
        patterns = self.config.layers
        unmatched = [p for p in patterns
                     if not any(_match(layer.name, p) for layer in model.layers)]  # fmt: skip
        if unmatched:
            names = ", ".join(layer.name for layer in model.layers)
            raise kplug.KplugError(f"low_rank: layers {unmatched} match no layer; layers: {names}")
        plans, skipped = {}, {}
        for layer in model.layers:
            if patterns and not any(_match(layer.name, p) for p in patterns):
                continue
            reason = _unfactorizable(layer)
            if reason:
                if patterns:
                    skipped[layer.name] = reason
                continue
            plan = _Factorization(layer, self.config.rank, self.config.energy)
            if plan.parameters_after >= plan.parameters_before:
                skipped[layer.name] = (
                    f"rank {plan.rank} would not save parameters "
                    f"({plan.parameters_after:,} >= {plan.parameters_before:,})"
                )
                continue
            plans[layer.name] = plan
        return plans, skipped


class _Factorization:
    """The truncated SVD of one layer's kernel."""

    def __init__(self, layer: Any, rank: int | None, energy: float | None):
        self.layer = layer
        kernel = np.asarray(layer.kernel)
        self.kernel_shape = kernel.shape
        matrix = kernel.reshape(-1, kernel.shape[-1])
        u, s, vt = np.linalg.svd(matrix, full_matrices=False)
        squared = s**2
        if rank is None:
            kept = np.cumsum(squared) / squared.sum()
            target = energy if energy is not None else DEFAULT_ENERGY
            rank = int(np.searchsorted(kept, target) + 1)
        self.rank = min(rank, len(s))
        root = np.sqrt(s[: self.rank])
        self.a = (u[:, : self.rank] * root).astype(kernel.dtype)
        self.b = (root[:, None] * vt[: self.rank]).astype(kernel.dtype)
        self.energy = float(squared[: self.rank].sum() / squared.sum())
        bias = layer.bias.shape[0] if layer.use_bias else 0
        self.parameters_before = int(matrix.size) + bias
        self.parameters_after = int(self.a.size + self.b.size) + bias

    def layers(self) -> tuple[Any, Any]:
        """The two new layers: A (no bias, no activation) then B (the original's options)."""
        layer = self.layer
        config = layer.get_config()
        name = config["name"]
        if type(layer).__name__ == "Dense":
            first = {"units": self.rank}
        else:
            first = {"filters": self.rank}
            config.update(strides=1, padding="valid")
        a_config = {**layer.get_config(), **first, "name": f"{name}_lowrank_a",
                    "use_bias": False, "activation": None}  # fmt: skip
        return (
            type(layer).from_config(a_config),
            type(layer).from_config({**config, "name": f"{name}_lowrank_b"}),
        )

    def weights(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        spatial = self.kernel_shape[:-2]
        a = self.a.reshape(*spatial, self.kernel_shape[-2], self.rank)
        b = self.b.reshape(*spatial, self.rank, self.kernel_shape[-1])
        bias = [np.asarray(self.layer.bias)] if self.layer.use_bias else []
        return [a], [b, *bias]

    def facts(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "energy_kept": round(self.energy, 4),
            "parameters_before": self.parameters_before,
            "parameters_after": self.parameters_after,
        }


class _Rebuild:
    """`keras.models.clone_model` with each planned layer called as its two factors and
    every other layer's weights copied."""

    def __init__(self, plans: dict[str, _Factorization]):
        self.plans = plans
        self.sources: dict[int, Any] = {}
        self.pairs: dict[str, tuple[Any, Any]] = {}

    def clone(self, model: Any) -> Any:
        import keras

        return keras.models.clone_model(
            model, clone_function=self._clone_layer, call_function=self._call_layer
        )

    def _clone_layer(self, layer: Any) -> Any:
        clone = type(layer).from_config(layer.get_config())
        self.sources[id(clone)] = layer
        return clone

    def _call_layer(self, layer: Any, *args: Any, **kwargs: Any) -> Any:
        source = self.sources[id(layer)]
        plan = self.plans.get(source.name)
        if plan is None:
            outputs = layer(*args, **kwargs)
            layer.set_weights(source.get_weights())
            return outputs
        if source.name not in self.pairs:
            self.pairs[source.name] = plan.layers()
        first, second = self.pairs[source.name]
        outputs = second(first(*args, **kwargs))
        a_weights, b_weights = plan.weights()
        first.set_weights(a_weights)
        second.set_weights(b_weights)
        return outputs


def _unfactorizable(layer: Any) -> str | None:
    kind = type(layer).__name__
    if kind not in FACTORIZABLE or not type(layer).__module__.startswith("keras."):
        return f"{kind} is not a Dense or 1x1 convolution"
    if kind != "Dense":
        config = layer.get_config()
        if any(k != 1 for k in config["kernel_size"]) or config.get("groups", 1) != 1:
            return "only 1x1 convolutions without groups factorize into two layers"
    if getattr(layer.dtype_policy, "quantization_mode", None):
        return "quantized layers cannot be factorized"
    return None


def _dense_parameters(model: Any) -> int:
    return sum(layer.count_params() for layer in model.layers if type(layer).__name__ == "Dense")


def _match(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


def _listing(skipped: dict[str, str]) -> str:
    if not skipped:
        return "the model has no Dense or 1x1 convolution layers"
    return "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
