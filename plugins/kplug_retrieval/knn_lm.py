"""`knn_lm`: a causal LM (`causal_lm`, trained the same way) evaluated as a kNN-LM
(Khandelwal et al., 2020, "Generalization through Memorization: Nearest Neighbor Language
Models").

After training, every position of the training windows becomes a datastore entry: the
key is the model's representation of the context (the input of its output projection:
the final layer norm's output in `gpt2`, the last recurrent layer's in `rnn`), the value
the token that follows. At evaluation the next-token distribution is

    p(y | c) = lambda * p_kNN(y | c) + (1 - lambda) * p_LM(y | c),

with p_kNN a softmax over the `k` nearest keys' negative squared L2 distances divided by
`temperature`, summed per value. metrics.json's `knn_lm` reports bits per token with and
without retrieval on validation and test (the same positions), a few other lambdas, and
the datastore's entries, build time and size.

Why an objective and not a step after training: the datastore's keys and values are made
from the objective's own training windows and its model's output semantics, and its
figures belong in the objective's `report` (metrics.json), after the recipe's `evaluate`;
a compression step must return a compressed model and reports size and accuracy. So the
recipe changes only `objective.name` (and the kNN keys); `datastore:` reuses the index of
an earlier run (e.g. with `model.init_from` that run and `train.epochs: 0`, to try other
`k`, `lambda`, `temperature` without building it again).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from kplug_sequence.causal_lm import CausalLM, CausalLMConfig
from pydantic import ConfigDict, Field, PositiveInt

import kplug
from kplug_retrieval.datastore import Datastore, find_datastore, tokenizer_fingerprint

LAMBDA_SWEEP = (0.0, 0.1, 0.25, 0.5, 0.75)


class KnnLMConfig(CausalLMConfig):
    model_config = ConfigDict(
        **CausalLMConfig.model_config, serialize_by_alias=True, validate_by_name=True
    )

    k: PositiveInt = Field(32, description="neighbours retrieved per position")
    lambda_: float = Field(
        0.25, alias="lambda", ge=0.0, le=1.0,
        description="weight of the kNN distribution in the interpolation",
    )  # fmt: skip
    temperature: float = Field(
        10.0, gt=0.0, description="divides the negative squared distances before the softmax"
    )
    index: Literal["flat", "ivf"] = Field(
        "flat", description="faiss IndexFlatL2 (exact) or IndexIVFFlat (approximate, faster)"
    )
    nlist: PositiveInt = Field(256, description="ivf: k-means cells")
    nprobe: PositiveInt = Field(8, description="ivf: cells searched per query")
    max_entries: PositiveInt | None = Field(
        None, description="datastore entries from the first training windows; null: all"
    )
    datastore: str | None = Field(
        None,
        description="reuse the datastore of this run directory (or runs/<name>): same "
        "tokenizer and key size required; null: build it from this run's training windows",
    )


class KnnLM(CausalLM):
    """`causal_lm` whose report adds the kNN-LM's bits per token."""

    def report(self, model: Any, data: kplug.Data, ctx: kplug.RunContext) -> dict[str, Any]:
        out = super().report(model, data, ctx)
        features = representation_model(model, self.config.from_logits)
        batch_size = ctx.recipe.data.options.batch_size
        datastore = self.datastore(features, data, ctx, batch_size)
        knn: dict[str, Any] = {"datastore": datastore.metadata}
        for name in ("validation", "test"):
            split = getattr(data, name)
            if split is None:
                continue
            windows = smoke_windows(split, ctx, batch_size)
            knn[name] = self.evaluate(features, datastore, split, windows, batch_size)
            ctx.log.info(
                "%s: %.3f bits/token with kNN retrieval (lambda %.2f, k %d), %.3f without",
                name, knn[name]["knn_lm_bits"], self.config.lambda_, self.config.k,
                knn[name]["lm_bits"],
            )  # fmt: skip
        return {**out, "knn_lm": knn}

    def datastore(self, features: Any, data: kplug.Data, ctx: kplug.RunContext,
                  batch_size: int) -> Datastore:  # fmt: skip
        """This run's datastore: built from the training windows, or the reused one."""
        tokenizer = tokenizer_fingerprint(ctx.directory.path)
        c = self.config
        if c.datastore is not None:
            return reuse(find_datastore(c.datastore), tokenizer, features.outputs[0].shape[-1])
        windows = smoke_windows(data.train, ctx, batch_size)
        if c.max_entries is not None:
            windows = min(windows, -(-c.max_entries // self.config.sequence_length))
        keys, _, values = representations(features, data.train, windows, batch_size)
        entries = slice(0, c.max_entries)
        datastore = Datastore.build(keys[entries], values[entries], tokenizer=tokenizer,
                                    kind=c.index, nlist=c.nlist, nprobe=c.nprobe)  # fmt: skip
        folder = datastore.save(ctx.directory)
        ctx.log.info("kNN datastore: %d entries of %d floats in %.1f s, %.1f MB in %s",
                     datastore.metadata["entries"], datastore.metadata["dimension"],
                     datastore.metadata["build_seconds"], datastore.metadata["bytes"] / 1e6,
                     folder)  # fmt: skip
        return datastore

    def evaluate(self, features: Any, datastore: Datastore, split: Any, windows: int,
                 batch_size: int) -> dict[str, Any]:  # fmt: skip
        """Bits per token of the LM alone, of the kNN-LM, and at other lambdas."""
        queries, p_lm, targets = representations(features, split, windows, batch_size)
        c = self.config
        start = time.perf_counter()
        p_knn = datastore.next_token_probability(queries, targets, c.k, c.temperature)
        seconds = time.perf_counter() - start
        bits = {lam: mixture_bits(p_knn, p_lm, lam) for lam in sorted({*LAMBDA_SWEEP, c.lambda_})}
        return {
            "lm_bits": bits[0.0],
            "knn_lm_bits": bits[c.lambda_],
            "lambda": c.lambda_,
            "k": c.k,
            "temperature": c.temperature,
            "bits_by_lambda": {str(lam): value for lam, value in bits.items()},
            "tokens": int(targets.size),
            "search_seconds": round(seconds, 3),
        }


def mixture_bits(p_knn: np.ndarray, p_lm: np.ndarray, lam: float) -> float:
    """Mean -log2 of `lam * p_knn + (1 - lam) * p_lm` (floored at 1e-12)."""
    p = lam * p_knn + (1.0 - lam) * p_lm
    return round(float(-np.mean(np.log(np.maximum(p, 1e-12))) / math.log(2)), 4)


def reuse(folder: Path, tokenizer: dict[str, str], dimension: int) -> Datastore:
    """An earlier run's datastore, refused unless its tokenizer and key size are this run's."""
    datastore = Datastore.load(folder)
    theirs = datastore.metadata.get("tokenizer", {})
    if theirs != tokenizer:
        raise kplug.DataError(
            f"objective.datastore: {folder} was built with tokenizer {theirs.get('name')!r} "
            f"(sha256 {str(theirs.get('sha256'))[:12]}), but this run's tokenizer is "
            f"{tokenizer['name']!r} (sha256 {tokenizer['sha256'][:12]}): its values are token "
            "ids of another vocabulary. Use a datastore built with this run's data.tokenizer, "
            "or set objective.datastore: null to build one from this run."
        )
    if datastore.metadata.get("dimension") != dimension:
        raise kplug.DataError(
            f"objective.datastore: {folder} holds keys of {datastore.metadata.get('dimension')} "
            f"numbers, but this model's representation has {dimension}; a datastore only "
            "serves the model that built it (model.init_from its run)."
        )
    return datastore


def smoke_windows(split: Any, ctx: kplug.RunContext, batch_size: int) -> int:
    """How many of the split's windows to use: all, or a smoke run's first few batches."""
    count = kplug.count_examples(split)
    return min(count, kplug.SMOKE_STEPS * batch_size) if ctx.smoke else count


def window_batch(split: Any, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows `start:stop` of a split: NumPy `(x, y)`, or streamed windows (`gather`)."""
    if hasattr(split, "gather"):
        return split.gather(np.arange(start, stop))
    return split[0][start:stop], split[1][start:stop]


def representation_model(model: Any, from_logits: bool) -> Any:
    """A model from token ids to (the input of the output projection, next-token
    probabilities): the projection is the last layer with weights on the output's path."""
    import keras

    tensor = model.outputs[0]
    while True:
        layer, node_index, _ = tensor._keras_history
        inputs = layer._inbound_nodes[node_index].input_tensors
        if layer.weights:
            break
        tensor = inputs[0]
    probabilities = model.outputs[0]
    if from_logits:
        probabilities = keras.layers.Softmax(dtype="float32")(probabilities)
    return keras.Model(model.inputs, [inputs[0], probabilities], name="knn_features")


def representations(features: Any, split: Any, windows: int, batch_size: int):
    """Keys (positions x dimension, float32), the model's probability of each target, and
    the targets, over the split's first `windows` windows."""
    keys, p_lm, targets = [], [], []
    for start in range(0, windows, batch_size):
        x, y = window_batch(split, start, min(windows, start + batch_size))
        hidden, probabilities = features.predict_on_batch(x)
        hidden, probabilities = np.asarray(hidden, np.float32), np.asarray(probabilities)
        keys.append(hidden.reshape(-1, hidden.shape[-1]))
        p_lm.append(np.take_along_axis(probabilities, y[..., None], axis=-1).reshape(-1))
        targets.append(np.asarray(y).reshape(-1))
    return np.concatenate(keys), np.concatenate(p_lm).astype(np.float64), np.concatenate(targets)
