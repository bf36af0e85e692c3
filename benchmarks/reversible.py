"""Activation memory of one training step through 4, 8 and 16 reversible blocks, against
the same blocks differentiated plainly.

    .venv/bin/python benchmarks/reversible.py [--backend tensorflow|jax] [--depths 4 8 16]
        [--batch 4] [--modes plain recompute]

Each configuration runs in its own process (benchmarks/memory_probe.py): a
`ReversibleStack` of the given depth (width 256, 4 heads, feed-forward 1024, full causal
attention) on a batch of 4 (`--batch`) x 1024 random vectors, a mean-square loss, SGD (no optimizer
state), one compiled step to warm up and one timed step. `recompute` is the custom
gradient that rebuilds each block's inputs from its outputs; `plain` is the same layer
with `recompute=False` (ordinary autodiff, keeping every block's activations). Printed:
peak RSS, activation memory (peak RSS minus the RSS after the model was built) and the
timed step's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_probe import current_rss_mib, run_measured  # noqa: E402

LENGTH, WIDTH, HEADS, INTERMEDIATE = 1024, 256, 4, 1024
MODES = ("plain", "recompute")


def child(depth: int, recompute: bool, batch: int) -> dict:
    import keras
    import numpy as np
    from kplug_transformers.reversible_stack import ReversibleStack

    keras.utils.set_random_seed(0)
    inputs = keras.Input((LENGTH, WIDTH), batch_size=batch)
    stack = ReversibleStack(depth, HEADS, INTERMEDIATE, causal=True, recompute=recompute)
    model = keras.Model(inputs, stack(inputs))
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mean_squared_error",
                  jit_compile=keras.backend.backend() == "jax")  # fmt: skip
    rng = np.random.default_rng(0)
    x, y = (rng.normal(size=(batch, LENGTH, WIDTH)).astype("float32") for _ in range(2))
    built = current_rss_mib()
    model.train_on_batch(x, y)  # compiles
    start = time.perf_counter()
    loss = model.train_on_batch(x, y)
    return {"built_rss_mib": built, "step_seconds": time.perf_counter() - start,
            "loss": float(loss)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"))
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--child", nargs=2, metavar=("DEPTH", "RECOMPUTE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1] == "recompute", args.batch)))
        return
    env = {"KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"backend {args.backend}; batch {args.batch} x {LENGTH} tokens, width {WIDTH}, one step")
    print(f"{'blocks':<8}{'gradient':<11}{'peak RSS MiB':>14}{'activations MiB':>17}{'step s':>8}")
    activations = {}
    for depth in args.depths:
        for mode in args.modes:
            command = [sys.executable, os.path.abspath(__file__), "--child", str(depth), mode,
                       "--batch", str(args.batch)]  # fmt: skip
            result = run_measured(command, env=env)
            activations[depth, mode] = result["peak_rss_mib"] - result["built_rss_mib"]
            print(f"{depth:<8}{mode:<11}{result['peak_rss_mib']:>14.0f}"
                  f"{activations[depth, mode]:>17.0f}{result['step_seconds']:>8.2f}",
                  flush=True)  # fmt: skip
    low, high = min(args.depths), max(args.depths)
    for mode in args.modes:
        growth = activations[high, mode] / activations[low, mode]
        print(f"{mode}: activations x{growth:.2f} from {low} to {high} blocks "
              f"(depth x{high / low:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
