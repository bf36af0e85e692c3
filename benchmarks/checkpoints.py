"""Cost of step checkpoints: kplug's samples/s with and without them, against plain Keras.

    .venv/bin/python benchmarks/checkpoints.py [--epochs 2] [--rounds 3]

The seed CNN on the embedded MNIST (3,600 training images, batch 64, 57 steps per epoch),
in one process, round after round: plain Keras `fit` (benchmarks/overhead.py), then kplug
with `train.keep_checkpoints=0` (the NaN and signal checks, no files), with the
default checkpoint at each epoch end, and with `train.checkpoint_every=10`. Samples/s is
measured by the same Keras callback in all. Prints the medians and the ratios to Keras.

`--batch-hook` adds plain Keras with a do-nothing `on_train_batch_end` callback: on a
backend whose Keras dispatches callbacks asynchronously (JAX), any batch-end hook that is
not `async_safe` makes Keras read every step's logs on the training thread; kplug's own
callbacks are `async_safe` (docs/reliability.md). On TensorFlow Keras reads them anyway.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {
    "no checkpoint files": ["train.keep_checkpoints=0"],
    "epoch ends": [],
    "every 10 steps": ["train.checkpoint_every=10"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-hook", action="store_true")
    args = parser.parse_args()

    from overhead import plain_keras

    import kplug
    from kplug.context import RunContext
    from kplug.plugins import registry
    from kplug.runner import load_data

    recipe = kplug.load_recipe("recipes/mnist_cnn.yaml")
    data = load_data(RunContext(recipe, registry()))
    (x, y), (xv, yv) = data.train, data.validation

    rates: dict[str, list[float]] = {"plain Keras": [], **{name: [] for name in VARIANTS}}
    with tempfile.TemporaryDirectory() as runs_root:
        for round_ in range(args.rounds):
            rates["plain Keras"].append(plain_keras(x, y, xv, yv, args.epochs, seed=42))
            if args.batch_hook:
                rates.setdefault("Keras + batch hook", []).append(
                    _with_batch_hook(plain_keras, x, y, xv, yv, args.epochs)
                )
            for name, overrides in VARIANTS.items():
                result = kplug.run("recipes/mnist_cnn.yaml",
                                   [f"train.epochs={args.epochs}", "train.verbose=0", *overrides],
                                   runs_root=runs_root, argv=["benchmark"])  # fmt: skip
                rates[name].append(result.metrics["samples_per_second"])
            shown = "  ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items())
            print(f"round {round_ + 1} samples/s: {shown}", flush=True)
    keras_rate = statistics.median(rates["plain Keras"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(
            f"{name:>20}: median {median:8.1f} samples/s, ratio to Keras {median / keras_rate:.3f}"
        )
    return 0


def _with_batch_hook(plain_keras, *args) -> float:
    """`plain_keras` with its timing callback given a do-nothing batch hook."""
    from kplug.training import callbacks

    class TimingWithBatchHook(callbacks.Timing):
        def on_train_batch_end(self, batch, logs=None):
            pass

    original, callbacks.Timing = callbacks.Timing, TimingWithBatchHook
    try:
        return plain_keras(*args, seed=42)
    finally:
        callbacks.Timing = original


if __name__ == "__main__":
    sys.exit(main())
