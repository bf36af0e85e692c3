"""Wall time of `kplug list` (and the other fast commands) in fresh processes.

    .venv/bin/python benchmarks/startup.py [--repeat 5]

Prints the median of `--repeat` runs per command; `kplug list` must stay under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    ["list"],
    ["describe", "cnn"],
    ["validate", "recipes/mnist_cnn.yaml"],
    ["plan", "recipes/mnist_cnn.yaml"],
]


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kplug", *args], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    worst = 0.0
    for command in COMMANDS:
        times = [wall(command) for _ in range(args.repeat)]
        median = statistics.median(times)
        worst = max(worst, median) if command == ["list"] else worst
        print(f"kplug {' '.join(command):40s} median {median:.3f} s  (min {min(times):.3f})")
    print(f"kplug list: {'OK' if worst < 1.0 else 'TOO SLOW'} ({worst:.3f} s, limit 1 s)")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
