"""The transfer experiment of docs/transfer.md: fine-tuning against training from scratch.

    .venv/bin/python benchmarks/transfer_digits.py [--runs-dir runs/transfer] [--seeds 1 2 3]
        [--finetune KEY=VALUE ...]

For each seed, in one process (the runner seeds Python, NumPy and TensorFlow per run):
1. recipes/transfer/pretrain_digits_0_4.yaml: the CNN on the MNIST digits 0-4;
2. recipes/transfer/finetune_digits_5_9.yaml from that run (model.init_from): convolution
   blocks frozen, Dense layers trained on 10% of the training digits 5-9;
3. recipes/transfer/scratch_digits_5_9.yaml: the same network and data from scratch.
The 10% subset is the same for every seed (data.fraction_seed); the seed changes the
initialization and the order of the batches. `--finetune` adds overrides to the
fine-tuning runs (e.g. `'train.phases=[{epochs: 15}]'`: the base frozen throughout).
Prints a Markdown table of the test accuracies (all test digits 5-9) and their means.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "transfer"


def run(recipe: str, runs_dir: Path, *overrides: str):
    from kplug import load_recipe
    from kplug.runner import run as run_recipe

    print("$ kplug run", f"recipes/transfer/{recipe}", *overrides, file=sys.stderr, flush=True)
    loaded = load_recipe(RECIPES / recipe, [*overrides, "train.verbose=0"])
    return run_recipe(loaded, runs_root=runs_dir, argv=["benchmarks/transfer_digits.py"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "transfer")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--finetune", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for the fine-tuning runs")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    table = []
    for seed in args.seeds:
        pretrained = run("pretrain_digits_0_4.yaml", args.runs_dir, f"seed={seed}")
        finetuned = run("finetune_digits_5_9.yaml", args.runs_dir, f"seed={seed}",
                        f"model.init_from={pretrained.directory.path}", *args.finetune)  # fmt: skip
        scratch = run("scratch_digits_5_9.yaml", args.runs_dir, f"seed={seed}")
        report = finetuned.directory.read_json("data_report.json")
        table.append(
            (seed, pretrained.metrics["test"]["accuracy"], finetuned.metrics["test"]["accuracy"],
             scratch.metrics["test"]["accuracy"], report["examples"]["train"],
             report["examples"]["test"])
        )  # fmt: skip

    print("| seed | pretrain 0-4 test acc. | fine-tuned 5-9 | scratch 5-9 | train / test 5-9 |")
    print("|---|---|---|---|---|")
    for seed, pre, fine, scratch, n_train, n_test in table:
        print(f"| {seed} | {pre:.4f} | {fine:.4f} | {scratch:.4f} | {n_train} / {n_test} |")
    means = [statistics.mean(row[i] for row in table) for i in (1, 2, 3)]
    print(f"| mean | {means[0]:.4f} | {means[1]:.4f} | {means[2]:.4f} | |")
    verdict = "beats" if means[1] > means[2] else "does NOT beat"
    print(f"\nfine-tuning {verdict} training from scratch by {means[1] - means[2]:+.4f} "
          f"(mean test accuracy over seeds {args.seeds})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
