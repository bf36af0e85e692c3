"""Training tokens per second of recipes/gpt_clm_pydoc.yaml (or `--recipe`, e.g.
recipes/bert_mlm_pydoc.yaml) with its examples streamed from memory-mapped token shards
(the default) and held in memory (`data.stream=false`), side by side in one process.

    .venv/bin/python benchmarks/streamed_throughput.py [--steps 40] [--rounds 7] [--recipe R]

Both are full kplug runs of the same recipe with the overrides of
benchmarks/transformer_throughput.py (one epoch of `--steps` steps, no validation, no
shuffle, constant learning rate), so they train on the same batches; the figure is each
run's `train_seconds` (Keras `fit` from start to end). A round runs both, the order
alternating between rounds (streamed first in odd rounds), so a slow spell of a shared
machine does not always fall on the same side. The settled figure is the median of the
per-round ratios (streamed / in memory); the script also prints their spread (lowest,
highest, and the middle half), and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transformer_throughput import RECIPE, overrides  # noqa: E402


def tokens_per_second(steps: int, runs: Path, stream: bool, path: Path = RECIPE) -> float:
    from kplug import load_recipe
    from kplug.runner import run

    recipe = load_recipe(path, [*overrides(steps), f"data.stream={str(stream).lower()}"])
    result = run(recipe, runs_root=runs, argv=["benchmark"])
    tokens = steps * recipe.data.options.batch_size * recipe.objective.config.sequence_length
    return tokens / result.metrics["train_seconds"]


def input_batches_per_second(steps: int, stream: bool, batches: int = 300) -> float:
    """Batches per second of the training input pipeline alone (no model)."""
    import time

    from kplug_distribute.input_pipeline import make_dataset

    from kplug import load_recipe
    from kplug.context import RunContext
    from kplug.plugins import registry
    from kplug.stages import load_data

    recipe = load_recipe(RECIPE, [*overrides(steps), f"data.stream={str(stream).lower()}"])
    ctx = RunContext(recipe, registry())
    data = ctx.build(recipe.objective).adapt(load_data(ctx), ctx)
    dataset = make_dataset(data.train, batch_size=recipe.data.options.batch_size,
                           training=True, seed=recipe.seed)  # fmt: skip
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="streamed_throughput_"))
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min)", flush=True)
    for stream in (True, False):  # prepares the shards, warms both sides, outside the timings
        tokens_per_second(2, runs, stream, args.recipe)
    ratios = []
    for round_ in range(args.rounds):
        order = (True, False) if round_ % 2 == 0 else (False, True)
        speed = {stream: tokens_per_second(args.steps, runs, stream, args.recipe)
                 for stream in order}  # fmt: skip
        ratios.append(speed[True] / speed[False])
        print(f"round {round_ + 1}: streamed {speed[True]:,.0f} tokens/s, in memory "
              f"{speed[False]:,.0f} tokens/s, ratio {ratios[-1]:.3f} (load average "
              f"{os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(f"streamed / in memory over {args.rounds} rounds: median {statistics.median(ratios):.3f}"
          f", lowest {min(ratios):.3f}, highest {max(ratios):.3f}, middle half "
          f"{quartiles[0]:.3f}-{quartiles[2]:.3f}; load average after "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
