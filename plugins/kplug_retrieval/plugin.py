"""Registers the kNN-LM objective."""

from __future__ import annotations

import kplug
from kplug_retrieval.knn_lm import KnnLM, KnnLMConfig


@kplug.hookimpl
def register_objectives(register):
    register("knn_lm", KnnLM, config=KnnLMConfig,
             summary="causal_lm evaluated as a kNN-LM: a faiss datastore of training contexts "
             "-> next token, interpolated with the model (lambda, k, temperature)")  # fmt: skip
