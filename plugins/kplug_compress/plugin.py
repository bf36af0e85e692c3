"""Registers the compression steps and exporters, and checks their order early."""

from __future__ import annotations

import kplug
from kplug_compress.cluster import Cluster, ClusterConfig
from kplug_compress.distill import Distill, DistillConfig, resolve_teacher
from kplug_compress.exporters import KerasExporter, SavedModelExporter, TFLiteConfig, TFLiteExporter
from kplug_compress.low_rank import LowRank, LowRankConfig
from kplug_compress.prune import Prune, PruneConfig
from kplug_compress.qat import QAT, QATConfig
from kplug_compress.quantize import Quantize, QuantizeConfig
from kplug_compress.serving import TextServingExporter, check_before_training

TF = ("tensorflow",)


@kplug.hookimpl
def register_compressors(register):
    register(
        "prune",
        Prune,
        config=PruneConfig,
        backends=TF,
        summary="TF-MOT magnitude pruning to a target sparsity, fine-tuned, stripped",
    )
    register(
        "cluster",
        Cluster,
        config=ClusterConfig,
        backends=TF,
        summary="TF-MOT weight clustering (shared values), optionally sparsity-preserving",
    )
    register(
        "qat",
        QAT,
        config=QATConfig,
        backends=TF,
        summary="TF-MOT quantization-aware training; preserves sparsity/clusters on request",
    )
    register(
        "quantize",
        Quantize,
        config=QuantizeConfig,
        summary="Keras 3 model.quantize: int8, int4 or float8 weights (keras-hub too)",
    )
    register(
        "distill",
        Distill,
        config=DistillConfig,
        summary="keras.distillation: the recipe's model learns from a teacher run",
    )
    register(
        "low_rank",
        LowRank,
        config=LowRankConfig,
        summary="truncated-SVD factorization of Dense and 1x1 conv kernels, fine-tuned",
    )


@kplug.hookimpl
def register_exporters(register):
    register(
        "keras",
        KerasExporter,
        config=kplug.EmptyConfig,
        summary="compressed.keras: the compressed Keras 3 model, no optimizer state",
    )
    register(
        "saved_model",
        SavedModelExporter,
        config=kplug.EmptyConfig,
        backends=TF,
        summary="saved_model/: a TensorFlow SavedModel (model.export)",
    )
    register(
        "saved_model_with_preprocessing",
        TextServingExporter,
        config=kplug.EmptyConfig,
        backends=TF,
        summary="a SavedModel of a text classifier taking raw strings (tokenizer in-graph)",
    )
    register(
        "tflite",
        TFLiteExporter,
        config=TFLiteConfig,
        backends=TF,
        summary="model.<mode>.tflite: float, dynamic, float16 or full-int8 TFLite",
    )


@kplug.hookimpl
def recipe_loaded(recipe):
    """`qat` returns a tf_keras model, which only the TFLite converter and SavedModel
    export take: refuse steps after it and the `keras` exporter before anything runs."""
    steps = [section.name for section in recipe.compression]
    if "qat" not in steps:
        return
    after = steps[steps.index("qat") + 1 :] + [s.name for s in recipe.export if s.name == "keras"]
    if after:
        raise kplug.RecipeError(
            "compression: qat must be the last step and be exported with tflite or "
            "saved_model (its fake-quantization layers exist only in tf_keras); found after "
            f"it: {', '.join(after)}. For pruned or clustered QAT, prune or cluster first and "
            "set qat's `preserve:`.",
            source=recipe.source,
        )


@kplug.hookimpl
def run_started(run):
    """Fail before training when a distillation teacher is missing, or when the text
    preprocessing cannot go into a serving SavedModel."""
    for section in run.recipe.compression:
        if isinstance(section.config, DistillConfig):
            resolve_teacher(section.config.teacher)
    if any(section.name == TextServingExporter.name for section in run.recipe.export):
        check_before_training(run)
