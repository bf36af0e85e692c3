"""Activation memory of one training step through 4, 8 and 16 reversible blocks, against
the same blocks differentiated plainly.

    .venv/bin/python benchmarks/reversible.py [--backend tensorflow|jax] [--depths 4 8 16]
        [--batch 4] [--modes plain recompute]

Each configuration runs in its own process (benchmarks/memory_probe.py): a
`ReversibleStack` of the given depth (width 256, 4 heads, feed-forward 1024, full causal
attention) on a batch of 4 (`--batch`) x 1024 random vectors, a mean-square loss, SGD (no optimizer
state), one compiled step to warm up and one timed step. `recompute` is the custom
gradient that rebuilds each block's inputs from its outputs; `plain` is the same layer
with `recompute=False` (ordinary autodiff, keeping every block's activations).

What is measured is the timed step alone: after the warm-up step the child resets its
peak RSS (`/proc/self/clear_refs`), so the compiled program (its graph or XLA executable,
which grows with depth, as code does) is in the baseline, not in the figure. For the
reset to see the step's memory, freed buffers must go back to the system: glibc returns
every freed buffer of 128 KiB or more (`MALLOC_MMAP_THRESHOLD_`), and TensorFlow runs its
own Eigen kernels (`TF_ENABLE_ONEDNN_OPTS=0`: oneDNN keeps its buffers cached across
steps, and a second step then shows ~10 MiB whatever it computes). Printed: the process's
peak RSS, the timed step's activation memory (its peak above the RSS before it:
activations, and whatever weight gradients are alive at once), the weights' size (a
weight's gradient is freed once SGD has applied it, so they are not all alive together),
and the timed step's seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_probe import (  # noqa: E402
    peak_rss_since_reset_mib,
    reset_peak_rss,
    run_measured,
)

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
    model.train_on_batch(x, y)  # compiles
    gc.collect()
    before = reset_peak_rss()
    start = time.perf_counter()
    loss = model.train_on_batch(x, y)
    seconds = time.perf_counter() - start
    weights = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return {"activations_mib": peak_rss_since_reset_mib() - before, "step_seconds": seconds,
            "weights_mib": weights * 4 / 2**20, "loss": float(loss)}  # fmt: skip


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
    env = {"KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "MALLOC_MMAP_THRESHOLD_": str(128 * 1024), "TF_ENABLE_ONEDNN_OPTS": "0"}  # fmt: skip
    print(f"backend {args.backend}; batch {args.batch} x {LENGTH} tokens, width {WIDTH}, one step")
    print(f"{'blocks':<8}{'gradient':<11}{'peak RSS MiB':>14}{'activations MiB':>17}"
          f"{'weights MiB':>13}{'step s':>8}")  # fmt: skip
    activations = {}
    for depth in args.depths:
        for mode in args.modes:
            command = [sys.executable, os.path.abspath(__file__), "--child", str(depth), mode,
                       "--batch", str(args.batch)]  # fmt: skip
            result = run_measured(command, env=env)
            activations[depth, mode] = result["activations_mib"]
            print(f"{depth:<8}{mode:<11}{result['peak_rss_mib']:>14.0f}"
                  f"{result['activations_mib']:>17.0f}{result['weights_mib']:>13.1f}"
                  f"{result['step_seconds']:>8.2f}",
                  flush=True)  # fmt: skip
    low, high = min(args.depths), max(args.depths)
    for mode in args.modes:
        growth = activations[high, mode] / activations[low, mode]
        print(f"{mode}: activations x{growth:.2f} from {low} to {high} blocks "
              f"(depth x{high / low:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
