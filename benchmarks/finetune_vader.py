"""Pretrained beats scratch: MiniLM fine-tuned vs the same architecture from random
weights, on the VADER test tokens (or test pairs), over three seeds.

    .venv/bin/python benchmarks/finetune_vader.py [--task sentiment|pairs] [--seeds 1 2 3]
        [--steps 30] [--runs-dir DIR]

`--task sentiment` (the default) runs recipes/bert_sentiment_finetune.yaml and
recipes/bert_sentiment_scratch.yaml; `--task pairs` runs recipes/bert_pairs_finetune.yaml
and recipes/bert_pairs_scratch.yaml (vader_pairs: which of two unseen tokens is rated
higher; ~12,000 training pairs, 1,498 test pairs). Each is
`kplug run` in a child process, once per seed (the seed sets the initial weights of the
head, or of the whole scratch model, dropout and the order of the data; the split of the
lexicon is the same). To fit a shared 2-core CPU, every run trains one epoch of
`--steps` batches of 32 (960 of the 6,005 training tokens by default) and validates on
2% of the lexicon; the test split (751 tokens, or the pairs of 751 tokens) is always
evaluated whole. Prints a
Markdown table and the mean difference in test accuracy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_runs import kplug_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASKS = {
    task: {
        "pretrained MiniLM": f"recipes/bert_{task}_finetune.yaml",
        "same architecture, scratch": f"recipes/bert_{task}_scratch.yaml",
    }
    for task in ("sentiment", "pairs")
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="sentiment")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=30, help="training batches per run")
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix=f"finetune_{args.task}_"))
    recipes = TASKS[args.task]
    overrides = [f"train.steps_per_epoch={args.steps}", "train.epochs=1",
                 "data.validation_fraction=0.02", "train.jit_compile=false"]  # fmt: skip
    accuracy: dict[str, list[float]] = {label: [] for label in recipes}
    started = time.perf_counter()
    print("| model | seed | test accuracy | test loss |")
    print("|---|---|---|---|")
    for seed in args.seeds:
        for label, recipe in recipes.items():
            _, metrics = kplug_run(recipe, runs_dir, [f"seed={seed}", *overrides])
            test = metrics["test"]
            accuracy[label].append(test["accuracy"])
            print(f"| {label} | {seed} | {test['accuracy']:.4f} | {test['loss']:.4f} |",
                  flush=True)  # fmt: skip
    print()
    for label, values in accuracy.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{label}: mean test accuracy {statistics.mean(values):.4f} (sd {spread:.4f})")
    pretrained, scratch = (statistics.mean(v) for v in accuracy.values())
    seconds = time.perf_counter() - started
    print(f"difference: {100 * (pretrained - scratch):+.1f} points (target: at least +10); "
          f"{seconds:.0f} s, runs in {runs_dir}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
