"""`cluster`: TF-MOT weight clustering (weight sharing), fine-tuned, then stripped."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

import numpy as np
from pydantic import Field

import kplug
from kplug_compress.step import FineTuneConfig, kernel_sparsity, select_layers
from kplug_compress.tfmot import TFMOTStep, wrap_layers


class ClusterConfig(FineTuneConfig):
    number_of_clusters: int = Field(16, ge=2, description="distinct values per weight tensor")
    centroid_init: Literal["kmeans_plus_plus", "linear", "density_based", "random"] = Field(
        "kmeans_plus_plus", description="how TF-MOT places the initial centroids"
    )
    preserve_sparsity: bool = Field(
        False, description="keep the zeros of a pruned model (sparsity-preserving clustering)"
    )
    layers: list[str] = Field(
        [],
        description="name patterns (fnmatch) of the layers to cluster; empty: every layer "
        "TF-MOT can cluster",
    )


class Cluster(TFMOTStep):
    """Replaces each chosen weight tensor by `number_of_clusters` shared values."""

    name = "cluster"

    def wrap(self, model: Any, tfmot: ModuleType, ctx: kplug.RunContext):
        from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import (  # noqa: E501
            ClusteringRegistry,
        )

        clustering = tfmot.clustering.keras
        config = self.config
        self.chosen = select_layers(model, config.layers, ClusteringRegistry.supports, self.name)
        init = getattr(clustering.CentroidInitialization, config.centroid_init.upper())
        wrapped = wrap_layers(
            model, self.chosen,
            lambda layer: clustering.cluster_weights(
                layer,
                number_of_clusters=config.number_of_clusters,
                cluster_centroids_init=init,
                preserve_sparsity=config.preserve_sparsity,
            ),
        )  # fmt: skip
        return wrapped, {"number_of_clusters": config.number_of_clusters}

    def strip(self, model: Any, tfmot: ModuleType) -> Any:
        return tfmot.clustering.keras.strip_clustering(model)

    def facts(self, model: Any) -> dict[str, Any]:
        chosen = [layer for layer in model.layers if layer.name in {c.name for c in self.chosen}]
        distinct = {
            layer.name: max(len(np.unique(w)) for w in layer.get_weights() if np.ndim(w) >= 2)
            for layer in chosen
            if any(np.ndim(w) >= 2 for w in layer.get_weights())
        }
        return {"distinct_kernel_values": distinct, "layer_sparsity": kernel_sparsity(chosen)}
