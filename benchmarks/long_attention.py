"""Peak memory and step time of one training step of a 4-layer, 256-wide causal
transformer at 1k, 4k and 16k tokens, under full, sliding_window, axial and lsh
attention (kplug_transformers' own layers, keras.ops only).

    .venv/bin/python benchmarks/long_attention.py [--backend tensorflow|jax]
        [--lengths 1024 4096 16384] [--attention full sliding_window axial lsh]

Each configuration runs in its own process (benchmarks/memory_probe.py): batch 1, token
embedding + 4 `TransformerBlock`s (4 heads, feed-forward 1024, pre-norm, causal) + a
256-token softmax, SGD, one compiled step to warm up and one timed step. Printed per
configuration: peak RSS of the process, the step's memory (peak RSS minus the RSS
after the model was built), the timed step's seconds. Options: sliding_window window
128; axial a square grid (rows = sqrt(length)); lsh chunks of 64, 2 rounds. Full
attention is skipped (with the reason) where its scores alone would not fit half the
memory available. Under `--backend jax` nothing here needs TensorFlow (Keras imports it
when it is installed): `--block-tensorflow` makes `import tensorflow` fail in the children.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_probe import available_mib, current_rss_mib, run_measured  # noqa: E402

ATTENTIONS = ("full", "sliding_window", "axial", "lsh")
WIDTH, LAYERS, HEADS, INTERMEDIATE, VOCABULARY = 256, 4, 4, 1024, 256
# float32 tensors of (heads, length, length) a training step keeps per layer: the
# scores, their softmax and the softmax's gradient.
FULL_SCORE_TENSORS = 3


def options(attention: str, length: int) -> dict:
    if attention == "sliding_window":
        return {"window": 128}
    if attention == "axial":
        return {"rows": 2 ** round(math.log2(length) / 2)}
    if attention == "lsh":
        return {"bucket_size": 64, "hash_rounds": 2}
    return {}


def full_scores_mib(length: int) -> float:
    return LAYERS * FULL_SCORE_TENSORS * HEADS * length**2 * 4 / 2**20


def child(attention: str, length: int) -> dict:
    import keras
    import numpy as np
    from kplug_transformers.transformer_block import TransformerBlock

    keras.utils.set_random_seed(0)
    tokens = keras.Input((length,), batch_size=1, dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, WIDTH)(tokens)
    for _ in range(LAYERS):
        block = TransformerBlock(
            HEADS, INTERMEDIATE, attention=attention, attention_options=options(attention, length),
            causal=True, normalize_first=True,
        )  # fmt: skip
        x = block(x)
    probabilities = keras.layers.Dense(VOCABULARY, activation="softmax")(x)
    model = keras.Model(tokens, probabilities)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="sparse_categorical_crossentropy",
                  jit_compile=keras.backend.backend() == "jax")  # fmt: skip
    ids = np.random.default_rng(0).integers(0, VOCABULARY, size=(1, length + 1)).astype("int32")
    built = current_rss_mib()
    model.train_on_batch(ids[:, :-1], ids[:, 1:])  # compiles
    start = time.perf_counter()
    loss = model.train_on_batch(ids[:, :-1], ids[:, 1:])
    seconds = time.perf_counter() - start
    return {"built_rss_mib": built, "step_seconds": seconds, "loss": float(loss),
            "tensorflow_imported": sys.modules.get("tensorflow") is not None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"))
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--attention", nargs="+", default=list(ATTENTIONS), choices=ATTENTIONS)
    parser.add_argument("--block-tensorflow", action="store_true",
                        help="children run with `import tensorflow` failing (jax)")  # fmt: skip
    parser.add_argument("--child", nargs=2, metavar=("ATTENTION", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.block_tensorflow:
            sys.modules["tensorflow"] = None  # any `import tensorflow` raises ImportError
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    env = {"KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"backend {args.backend}; batch 1, {LAYERS} layers, width {WIDTH}, one training step")
    print(f"{'attention':<15}{'length':>7}{'peak RSS MiB':>14}{'step MiB':>10}{'step s':>8}")
    results = {}
    for length in args.lengths:
        for attention in args.attention:
            if attention == "full" and full_scores_mib(length) > available_mib() / 2:
                print(f"{attention:<15}{length:>7}  skipped: its scores alone take about "
                      f"{full_scores_mib(length) / 1024:.0f} GiB ({LAYERS} layers x "
                      f"{FULL_SCORE_TENSORS} x {HEADS} heads x {length}^2 floats), more than "
                      f"half the {available_mib() / 1024:.0f} GiB available")  # fmt: skip
                continue
            command = [sys.executable, os.path.abspath(__file__), "--child", attention, str(length)]
            command += ["--block-tensorflow"] if args.block_tensorflow else []
            result = run_measured(command, env=env)
            step = result["peak_rss_mib"] - result["built_rss_mib"]
            results[attention, length] = step
            print(f"{attention:<15}{length:>7}{result['peak_rss_mib']:>14.0f}{step:>10.0f}"
                  f"{result['step_seconds']:>8.2f}"
                  + ("" if result["tensorflow_imported"] else "   (TensorFlow not imported)"),
                  flush=True)  # fmt: skip
    lengths = sorted(args.lengths)
    if len(lengths) >= 2:
        short, long = lengths[-2], lengths[-1]
        print(f"step memory growth from {short} to {long} (linear: {long / short:.1f}x):")
        for attention in args.attention:
            if (attention, short) in results and (attention, long) in results:
                growth = results[attention, long] / results[attention, short]
                print(f"  {attention:<15}{growth:.2f}x = {growth / (long / short):.2f} x linear")


if __name__ == "__main__":
    main()
