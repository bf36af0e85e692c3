"""Training throughput of kplug against plain Keras: the same CNN on the same data.

    .venv/bin/python benchmarks/overhead.py [--epochs 3] [--rounds 3]

Both train the seed CNN on the embedded MNIST (3,600 training images, batch 64) in this
one process, alternating kplug and plain Keras for `--rounds` rounds; samples/s is
measured by the same Keras callback (from `on_train_begin` to `on_train_end`) in both.
Prints the median samples/s of each and their ratio (kplug / Keras; the target is >= 0.97).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def plain_keras(x, y, xv, yv, epochs: int, seed: int) -> float:
    import keras
    from keras import layers

    from kplug.training.callbacks import Timing

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    timing = Timing()
    model.fit(x, y, batch_size=64, epochs=epochs, validation_data=(xv, yv), verbose=0,
              callbacks=[timing])  # fmt: skip
    return len(x) * epochs / timing.seconds


def with_kplug(epochs: int, runs_root: str) -> tuple[float, float]:
    import kplug

    start = time.perf_counter()
    result = kplug.run("recipes/mnist_cnn.yaml", [f"train.epochs={epochs}", "train.verbose=0"],
                       runs_root=runs_root, argv=["benchmark"])  # fmt: skip
    return result.metrics["samples_per_second"], time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import kplug
    from kplug.context import RunContext
    from kplug.plugins import registry
    from kplug.runner import load_data

    recipe = kplug.load_recipe("recipes/mnist_cnn.yaml")
    data = load_data(RunContext(recipe, registry()))  # the very arrays kplug trains on
    (x, y), (xv, yv) = data.train, data.validation

    ours, theirs, walls = [], [], []
    with tempfile.TemporaryDirectory() as runs_root:
        for round_ in range(args.rounds):
            kplug_rate, wall = with_kplug(args.epochs, runs_root)
            keras_rate = plain_keras(x, y, xv, yv, args.epochs, seed=42)
            ours.append(kplug_rate)
            theirs.append(keras_rate)
            walls.append(wall)
            print(f"round {round_ + 1}: kplug {kplug_rate:8.1f} samples/s   "
                  f"keras {keras_rate:8.1f} samples/s", flush=True)  # fmt: skip
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"median: kplug {statistics.median(ours):.1f} samples/s, plain Keras "
          f"{statistics.median(theirs):.1f} samples/s")  # fmt: skip
    print(f"ratio kplug/keras = {ratio:.3f} (target >= 0.97)")
    print(f"kplug end-to-end wall per run (load, build, fit, evaluate, save): "
          f"median {statistics.median(walls):.1f} s")  # fmt: skip
    return 0 if ratio >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())
