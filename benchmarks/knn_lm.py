"""kNN-LM vs the plain causal LM: validation and test bits per token of
recipes/gpt_knn_pydoc.yaml (gpt_clm_pydoc's data, model and training) with and without
retrieval, and the datastore's build time and size.

    .venv/bin/python benchmarks/knn_lm.py [--epochs 40] [--temperatures 1 10 100]
        [--runs-dir DIR]

One `kplug run` trains the model for `--epochs` (the recipe's 40 take about 21 minutes on
2 idle CPU cores), builds the datastore from every training position and scores validation
and test both ways (same model, same positions). Then, for each other temperature, a
`kplug run` with `model.init_from` that run, `train.epochs=0` and `objective.datastore`
that run re-scores with the same model and index (nothing trained or built again).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "recipes/gpt_knn_pydoc.yaml"


def kplug_run(runs_dir: Path, overrides: list[str]) -> tuple[Path, dict]:
    command = [sys.executable, "-m", "kplug", "run", RECIPE, "--runs-dir", str(runs_dir),
               *overrides]  # fmt: skip
    print("$ kplug run", RECIPE, *overrides, file=sys.stderr, flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{RECIPE} failed:\n{result.stderr[-3000:]}")
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    run_dir = run_dir if run_dir.is_absolute() else ROOT / run_dir
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def rows(label: str, knn: dict) -> list[str]:
    out = []
    for split in ("validation", "test"):
        s = knn[split]
        gain = 100 * (1 - s["knn_lm_bits"] / s["lm_bits"])
        out.append(f"| {label} | {split} | {s['lm_bits']:.4f} | {s['knn_lm_bits']:.4f} | "
                   f"{gain:.1f}% | {s['search_seconds']:.1f} |")  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--temperatures", type=float, nargs="*", default=[1.0, 100.0])
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="knn_lm_"))
    started = time.perf_counter()
    trained, metrics = kplug_run(runs_dir, [f"train.epochs={args.epochs}"])
    knn = metrics["knn_lm"]
    store = knn["datastore"]
    print(f"datastore: {store['entries']:,} entries x {store['dimension']} float32, "
          f"{store['index']} index, built in {store['build_seconds']:.2f} s, "
          f"{store['bytes'] / 1e6:.1f} MB on disk ({trained / 'knn'})\n")  # fmt: skip
    print("| k, lambda, temperature | split | LM bits/token | kNN-LM bits/token | reduction "
          "| search s |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    settings = f"k {knn['validation']['k']}, lambda {knn['validation']['lambda']}"
    label = f"{settings}, T {knn['validation']['temperature']:g}"
    print("\n".join(rows(label, knn)), flush=True)
    sweeps = {label: knn["validation"]["bits_by_lambda"]}
    for temperature in args.temperatures:
        _, other = kplug_run(runs_dir, [f"model.init_from={trained}", "train.epochs=0",
                                        f"objective.datastore={trained}",
                                        f"objective.temperature={temperature}"])  # fmt: skip
        label = f"{settings}, T {temperature:g}"
        print("\n".join(rows(label, other["knn_lm"])), flush=True)
        sweeps[label] = other["knn_lm"]["validation"]["bits_by_lambda"]
    print("\nvalidation bits per token by lambda (0: the LM alone):\n")
    lambdas = list(next(iter(sweeps.values())))
    print("| setting | " + " | ".join(f"lambda {lam}" for lam in lambdas) + " |")
    print("|---|" + "---|" * len(lambdas))
    for label, sweep in sweeps.items():
        print(f"| {label} | " + " | ".join(f"{sweep[lam]:.4f}" for lam in lambdas) + " |")
    print(f"\ncausal_lm report (validation): {metrics['language_model']['validation']}")
    print(f"{time.perf_counter() - started:.0f} s, {args.epochs} epochs, runs in {runs_dir}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
