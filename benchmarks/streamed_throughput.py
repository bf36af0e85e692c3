"""Training tokens per second of recipes/gpt_clm_pydoc.yaml with its windows streamed
from memory-mapped token shards (the default) and held in memory (`data.stream=false`),
side by side in one process.

    .venv/bin/python benchmarks/streamed_throughput.py [--steps 40] [--repeats 3]

Both are full kplug runs of the same recipe with the overrides of
benchmarks/transformer_throughput.py (one epoch of `--steps` steps, no validation, no
shuffle, constant learning rate), so they train on the same batches; the figure is each
run's `train_seconds` (Keras `fit` from start to end). The two alternate `--repeats`
times; the script prints each round's ratio (streamed / in memory), their median, and
the ratio of the best of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transformer_throughput import RECIPE, overrides  # noqa: E402


def tokens_per_second(steps: int, runs: Path, stream: bool) -> float:
    from kplug import load_recipe
    from kplug.runner import run

    recipe = load_recipe(RECIPE, [*overrides(steps), f"data.stream={str(stream).lower()}"])
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
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="streamed_throughput_"))
    results: dict[str, list[float]] = {"streamed": [], "in memory": []}
    tokens_per_second(2, runs, True)  # prepares the shards once, outside the timings
    for repeat in range(args.repeats):
        results["streamed"].append(tokens_per_second(args.steps, runs, True))
        results["in memory"].append(tokens_per_second(args.steps, runs, False))
        print(f"repeat {repeat + 1}: streamed {results['streamed'][-1]:,.0f} tokens/s, in "
              f"memory {results['in memory'][-1]:,.0f} tokens/s", flush=True)  # fmt: skip
    ratios = [s / m for s, m in zip(results["streamed"], results["in memory"], strict=True)]
    best = max(results["streamed"]) / max(results["in memory"])
    print(
        "per-round ratios "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + f"; median {statistics.median(ratios):.3f}; best of {args.repeats}: {best:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
