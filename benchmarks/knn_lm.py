"""kNN-LM vs the plain causal LM: validation and test bits per token of
recipes/gpt_knn_pydoc.yaml (gpt_clm_pydoc's data, model and training) with and without
retrieval, k / temperature / lambda chosen on validation, and the datastore's build time
and size.

    .venv/bin/python benchmarks/knn_lm.py [--epochs 40 | --init-from RUN_DIR] [--runs-dir DIR]

One `kplug run recipes/gpt_knn_pydoc.yaml`: it trains the model for `--epochs` (the
recipe's 40 take about 21 minutes on 2 idle CPU cores), or, with `--init-from` a trained
gpt_clm_pydoc (or gpt_knn_pydoc) run, loads that model and trains nothing
(`train.epochs=0`). Then it builds the datastore from every training position, searches
each validation and test position's nearest keys once (the recipe's largest k), scores
the recipe's fixed setting, chooses (k, temperature, lambda) from the recipe's `tune`
grid on validation and scores test at that choice. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_runs import kplug_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "recipes/gpt_knn_pydoc.yaml"


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
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="a trained gpt_clm_pydoc run: evaluate its model, train nothing",
    )
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="knn_lm_"))
    started = time.perf_counter()
    if args.init_from is not None:
        overrides = [f"model.init_from={args.init_from.resolve()}", "train.epochs=0"]
    else:
        overrides = [f"train.epochs={args.epochs}"]
    run_dir, metrics = kplug_run(RECIPE, runs_dir, overrides)
    knn = metrics["knn_lm"]
    store = knn["datastore"]
    print(f"datastore: {store['entries']:,} entries x {store['dimension']} float32, "
          f"{store['index']} index, built in {store['build_seconds']:.2f} s, "
          f"{store['bytes'] / 1e6:.1f} MB on disk ({run_dir / 'knn'})\n")  # fmt: skip
    print("| k, lambda, temperature | split | LM bits/token | kNN-LM bits/token | reduction "
          "| search s |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    fixed = knn["validation"]
    label = f"k {fixed['k']}, lambda {fixed['lambda']}, T {fixed['temperature']:g} (recipe)"
    print("\n".join(rows(label, knn)), flush=True)
    tuned = knn.get("tuned")
    if tuned is not None:
        chosen = tuned["chosen"]
        print(f"\nchosen on validation from {len(tuned['grid'])} settings: k {chosen['k']}, "
              f"temperature {chosen['temperature']:g}, lambda {chosen['lambda']}\n")  # fmt: skip
        print("| split | LM bits/token | kNN-LM bits/token (chosen) | reduction |")
        print("|---|---:|---:|---:|")
        for split in ("validation", "test"):
            if f"{split}_bits" in tuned:
                lm, bits = knn[split]["lm_bits"], tuned[f"{split}_bits"]
                print(f"| {split} | {lm:.4f} | {bits:.4f} | {100 * (1 - bits / lm):.1f}% |")
        print("\nvalidation bits per token, best lambda for each k and temperature:\n")
        temperatures = sorted({r["temperature"] for r in tuned["grid"]})
        print("| k | " + " | ".join(f"T {t:g}" for t in temperatures) + " |")
        print("|---|" + "---:|" * len(temperatures))
        for k in sorted({r["k"] for r in tuned["grid"]}):
            best = [
                min(r["validation_bits"] for r in tuned["grid"]
                    if r["k"] == k and r["temperature"] == t)
                for t in temperatures
            ]  # fmt: skip
            print(f"| {k} | " + " | ".join(f"{b:.4f}" for b in best) + " |")
    print(f"\ncausal_lm report (validation): {metrics['language_model']['validation']}")
    print(f"{time.perf_counter() - started:.0f} s, runs in {runs_dir}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
