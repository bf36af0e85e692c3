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
the datastore's entries, build time and size; with `tune`, the k, temperature and lambda
of a grid chosen on validation and test's bits at that choice (each position's nearest
keys are searched once, for the largest k, and re-weighted for every setting).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from kplug_sequence.causal_lm import CausalLM, CausalLMConfig
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

import kplug
from kplug_retrieval.datastore import (
    Datastore,
    find_datastore,
    knn_probability,
    tokenizer_fingerprint,
)

LAMBDA_SWEEP = (0.0, 0.1, 0.25, 0.5, 0.75)


class KnnTuning(BaseModel):
    """The grid `tune:` searches on validation (every combination)."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)

    k: list[PositiveInt] = Field([8, 32, 128], min_length=1)
    temperature: list[PositiveFloat] = Field([1.0, 3.0, 10.0, 30.0, 100.0], min_length=1)
    lambda_: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], alias="lambda", min_length=1
    )


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
    tune: KnnTuning | None = Field(
        None,
        description="choose k, temperature and lambda on validation from these lists "
        "(one search with the largest k) and report test at the chosen ones; null: no tuning",
    )


class KnnLM(CausalLM):
    """`causal_lm` whose report adds the kNN-LM's bits per token."""

    def report(self, model: Any, data: kplug.Data, ctx: kplug.RunContext) -> dict[str, Any]:
        out = super().report(model, data, ctx)
        features = representation_model(model, self.config.from_logits)
        batch_size = ctx.recipe.data.options.batch_size
        datastore = self.datastore(features, data, ctx, batch_size)
        knn: dict[str, Any] = {"datastore": datastore.metadata}
        searched = {}
        for name in ("validation", "test"):
            split = getattr(data, name)
            if split is None:
                continue
            windows = smoke_windows(split, ctx, batch_size)
            searched[name] = self.search(features, datastore, split, windows, batch_size)
            knn[name] = self.score(searched[name])
            ctx.log.info(
                "%s: %.3f bits/token with kNN retrieval (lambda %.2f, k %d), %.3f without",
                name, knn[name]["knn_lm_bits"], self.config.lambda_, self.config.k,
                knn[name]["lm_bits"],
            )  # fmt: skip
        if self.config.tune is not None and "validation" in searched:
            knn["tuned"] = tune(self.config.tune, searched)
            ctx.log.info("tuned on validation: %s", knn["tuned"]["chosen"])
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

    def search(self, features: Any, datastore: Datastore, split: Any, windows: int,
               batch_size: int) -> Searched:  # fmt: skip
        """The split's positions: the LM's probability of each target and the target's
        nearest keys (as many as the largest k used)."""
        queries, p_lm, targets = representations(features, split, windows, batch_size)
        c = self.config
        k = max([c.k, *(c.tune.k if c.tune is not None else [])])
        start = time.perf_counter()
        distances, hits = datastore.neighbours(queries, targets, k)
        return Searched(p_lm, distances, hits, time.perf_counter() - start)

    def score(self, searched: Searched) -> dict[str, Any]:
        """Bits per token of the LM alone, of the kNN-LM, and at other lambdas."""
        c = self.config
        p_knn = searched.p_knn(c.k, c.temperature)
        bits = {lam: mixture_bits(p_knn, searched.p_lm, lam)
                for lam in sorted({*LAMBDA_SWEEP, c.lambda_})}  # fmt: skip
        return {
            "lm_bits": bits[0.0],
            "knn_lm_bits": bits[c.lambda_],
            "lambda": c.lambda_,
            "k": c.k,
            "temperature": c.temperature,
            "bits_by_lambda": {str(lam): value for lam, value in bits.items()},
            "tokens": int(searched.p_lm.size),
            "search_seconds": round(searched.seconds, 3),
        }


@dataclass
class Searched:
    """One split's LM probabilities of the targets and the targets' nearest keys
    (`Datastore.neighbours`), from which p_kNN follows for any k up to the searched one
    and any temperature."""

    p_lm: np.ndarray
    distances: np.ndarray
    hits: np.ndarray
    seconds: float

    def p_knn(self, k: int, temperature: float) -> np.ndarray:
        return knn_probability(self.distances[:, :k], self.hits[:, :k], temperature)


def tune(grid: KnnTuning, searched: dict[str, Searched]) -> dict[str, Any]:
    """The (k, temperature, lambda) of the grid with the fewest validation bits per
    token, and test's bits at that setting (test takes no part in the choice)."""
    validation = searched["validation"]
    results = []
    for k in grid.k:
        for temperature in grid.temperature:
            p_knn = validation.p_knn(k, temperature)
            for lam in grid.lambda_:
                bits = mixture_bits(p_knn, validation.p_lm, lam)
                results.append({"k": k, "temperature": temperature, "lambda": lam,
                                "validation_bits": bits})  # fmt: skip
    best = min(results, key=lambda result: result["validation_bits"])
    chosen = {key: best[key] for key in ("k", "temperature", "lambda")}
    out = {"chosen": chosen, "validation_bits": best["validation_bits"], "grid": results}
    if "test" in searched:
        test = searched["test"]
        out["test_bits"] = mixture_bits(test.p_knn(chosen["k"], chosen["temperature"]),
                                        test.p_lm, chosen["lambda"])  # fmt: skip
    return out


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
