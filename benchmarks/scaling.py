"""Multi-worker scaling on this machine: samples/s with 1 and N workers (`kplug launch`).

    .venv/bin/python benchmarks/scaling.py [--workers 2] [--epochs 2] [--steps 60]
        [--per-worker-batch 64] [--rounds 1]

Both runs are the same `kplug launch` of recipes/mnist_cnn_multiworker.yaml (the
MultiWorkerMirroredStrategy loop, gRPC ring collectives on 127.0.0.1), so they differ only
in the number of workers. Data-parallel (weak) scaling: each worker keeps a batch of
`--per-worker-batch`, so the global batch is N times larger with N workers. samples/s is
the chief's `samples_per_second` (training batches x global batch / training seconds, the
first step's tracing included). Scaling efficiency = samples/s(N) / (N x samples/s(1)).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RECIPE = "recipes/mnist_cnn_multiworker.yaml"


def launch(workers: int, args: argparse.Namespace, runs_root: str) -> float:
    command = [
        sys.executable, "-m", "kplug", "launch", "--workers", str(workers), RECIPE,
        f"data.batch_size={args.per_worker_batch * workers}", f"train.epochs={args.epochs}",
        f"train.steps_per_epoch={args.steps}", "train.verbose=0", "--runs-dir", runs_root,
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        sys.exit(f"launch with {workers} worker(s) failed:\n{result.stdout[-3000:]}"
                 f"{result.stderr[-3000:]}")  # fmt: skip
    chief = Path(result.stdout.strip().splitlines()[-1])
    return json.loads((chief / "metrics.json").read_text())["samples_per_second"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--per-worker-batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; medians")
    args = parser.parse_args()

    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.node()}, {os.cpu_count()} CPU cores ({cpu}), "
          f"Python {platform.python_version()}")  # fmt: skip
    one, many = [], []
    with tempfile.TemporaryDirectory() as runs_root:
        for round_ in range(args.rounds):
            one.append(launch(1, args, runs_root))
            many.append(launch(args.workers, args, runs_root))
            print(f"round {round_ + 1}: 1 worker {one[-1]:.1f} samples/s, {args.workers} "
                  f"workers {many[-1]:.1f} samples/s", flush=True)  # fmt: skip
    single, multi = statistics.median(one), statistics.median(many)
    efficiency = multi / (args.workers * single)
    print(f"1 worker:  {single:.1f} samples/s (batch {args.per_worker_batch})")
    print(f"{args.workers} workers: {multi:.1f} samples/s (global batch "
          f"{args.per_worker_batch * args.workers})")  # fmt: skip
    print(f"speed-up {multi / single:.2f}x, scaling efficiency {efficiency:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
