"""The compression anchors of docs/compression.md, measured on the embedded MNIST.

    .venv/bin/python benchmarks/compression_anchors.py [--runs-dir runs/anchors] [--seeds 1 2 3]

Runs, each as `kplug run` in a child process:
1. recipes/mnist_cnn.yaml: the float baseline;
2. recipes/compress/mnist_prune_quantize.yaml on it (init_from, no training): prune to 80%
   sparsity, sparsity-preserving clustering, then float and int8 TFLite;
3. the same without the cluster step: int8 TFLite after pruning alone;
4. the same without the compression steps: int8 post-training quantization alone;
5. recipes/compress/mnist_low_rank.yaml on it: half the Dense parameters;
6. recipes/compress/mnist_teacher.yaml, then recipes/compress/mnist_distill.yaml with that
   teacher, once per seed: distilled student and the same student trained alone, on the
   whole training set (the anchor) and, for comparison, on a 504-image transfer set
   (`data.fraction=0.14`, 30 epochs).
Prints one Markdown table of the anchors (target, measured, held or missed) and the
per-seed distillation figures; every run directory keeps its compression.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kplug_run(recipe: str, runs_dir: Path, *overrides: str) -> Path:
    """Run a recipe; the run directory (also when a max_accuracy_drop failed it)."""
    command = [sys.executable, "-m", "kplug", "run", recipe, "--runs-dir", str(runs_dir),
               *overrides]  # fmt: skip
    print("$ kplug run", recipe, *overrides, file=sys.stderr, flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode not in (0, 2):
        sys.exit(f"{recipe} failed:\n{result.stderr[-3000:]}")
    if result.returncode == 2:
        print(result.stderr.strip().splitlines()[-1], file=sys.stderr)
    with open(ROOT / recipe, encoding="utf-8") as handle:
        name = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("name:"))
    return max((runs_dir / name).iterdir(), key=lambda p: p.stat().st_mtime)


def rows(run_dir: Path) -> dict[str, dict]:
    report = json.loads((run_dir / "compression.json").read_text())
    return {row.get("file") if row["stage"].startswith("export") else row["stage"]: row
            for row in report["rows"]}  # fmt: skip


def anchor(name: str, measured: str, held: bool, compared: bool = False) -> str:
    """A table row; `compared`: a variant measured for comparison, not the anchor."""
    verdict = ("would hold" if held else "would miss") if compared else \
        ("held" if held else "MISSED")  # fmt: skip
    return f"| {name} | {measured} | {verdict} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "anchors")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    runs = args.runs_dir.resolve()

    baseline = kplug_run("recipes/mnist_cnn.yaml", runs)
    on_baseline = (f"model.init_from={baseline}", "train.epochs=0")
    pruned = rows(kplug_run("recipes/compress/mnist_prune_quantize.yaml", runs, *on_baseline))
    pruned_only = rows(kplug_run("recipes/compress/mnist_prune_quantize.yaml", runs,
                                 *on_baseline, "~compression.1"))  # fmt: skip
    ptq = rows(kplug_run("recipes/compress/mnist_prune_quantize.yaml", runs, *on_baseline,
                         "~compression", "~export.3"))  # fmt: skip
    low_rank = rows(kplug_run("recipes/compress/mnist_low_rank.yaml", runs, *on_baseline))
    teacher = kplug_run("recipes/compress/mnist_teacher.yaml", runs)
    distilled = [
        rows(kplug_run("recipes/compress/mnist_distill.yaml", runs, f"seed={seed}",
                       f"compression.0.teacher={teacher}"))["1. distill"]
        for seed in args.seeds
    ]  # fmt: skip
    transfer_set = [
        rows(kplug_run("recipes/compress/mnist_distill.yaml", runs, f"seed={seed}",
                       f"compression.0.teacher={teacher}", "data.fraction=0.14",
                       "compression.0.epochs=30"))["1. distill"]
        for seed in args.seeds
    ]  # fmt: skip

    lines = ["| anchor | measured | |", "|---|---|---|"]
    prune = pruned["1. prune"]
    lines.append(anchor(
        "prune 80%: drop <= 1 pt, gzipped >= 3x smaller",
        f"sparsity {prune['sparsity']:.3f}, drop {100 * prune['accuracy_drop']:.1f} pt, "
        f"{prune['gzip_smaller_x']:.2f}x",
        prune["accuracy_drop"] <= 0.01 and prune["gzip_smaller_x"] >= 3,
    ))  # fmt: skip
    for label, report, file, compared in (
        ("prune + cluster + int8 TFLite", pruned, "model.int8.tflite", False),
        ("(compared) the same, TFLite sparse encoding", pruned, "model.int8.sparse.tflite", True),
        ("(compared) prune + int8 TFLite, no clustering", pruned_only, "model.int8.tflite", True),
    ):
        row = report[file]
        lines.append(anchor(
            f"{label} (`{file}`): >= 10x, drop <= 1 pt",
            f"{row['gzip_smaller_x']:.2f}x, drop {100 * row['accuracy_drop']:.1f} pt",
            row["gzip_smaller_x"] >= 10 and row["accuracy_drop"] <= 0.01, compared,
        ))  # fmt: skip
    row = ptq["model.int8.tflite"]
    lines.append(anchor(
        "int8 post-training quantization alone: >= 3.5x, drop <= 1 pt",
        f"{row['gzip_smaller_x']:.2f}x, drop {100 * row['accuracy_drop']:.1f} pt",
        row["gzip_smaller_x"] >= 3.5 and row["accuracy_drop"] <= 0.01,
    ))  # fmt: skip
    factorized = low_rank["1. low_rank"]
    before = factorized["details"]["dense_parameters_before"]
    after = factorized["details"]["dense_parameters_after"]
    lines.append(anchor(
        "low rank to half the Dense parameters: drop <= 1 pt after fine-tuning",
        f"Dense {before:,} -> {after:,} ({after / before:.1%}), "
        f"drop {100 * factorized['accuracy_drop']:.1f} pt",
        after <= before / 2 and factorized["accuracy_drop"] <= 0.01,
    ))  # fmt: skip
    alone = [d["details"]["student_alone_test"]["accuracy"] for d in distilled]
    taught = [d["test"]["accuracy"] for d in distilled]
    details = distilled[0]["details"]
    ratio = details["student_parameters"] / details["teacher_parameters"]
    lines.append(anchor(
        f"distillation ({args.seeds} seeds): student ~1/10 of the teacher beats it alone",
        f"student/teacher parameters {ratio:.3f}; mean accuracy distilled "
        f"{statistics.mean(taught):.4f} vs alone {statistics.mean(alone):.4f}",
        statistics.mean(taught) > statistics.mean(alone),
    ))  # fmt: skip
    print("\n".join(lines))
    for title, runs_of in (("the recipe (whole training set, 8 epochs)", distilled),
                           ("504-image transfer set, 30 epochs", transfer_set)):  # fmt: skip
        print(f"\ndistillation, {title}:\n| seed | distilled | alone | teacher |\n"
              "|---|---:|---:|---:|")  # fmt: skip
        for seed, d in zip(args.seeds, runs_of, strict=True):
            print(f"| {seed} | {d['test']['accuracy']:.4f} | "
                  f"{d['details']['student_alone_test']['accuracy']:.4f} | "
                  f"{d['details']['teacher_test']['accuracy']:.4f} |")  # fmt: skip
        taught_mean = statistics.mean(d["test"]["accuracy"] for d in runs_of)
        alone_mean = statistics.mean(
            d["details"]["student_alone_test"]["accuracy"] for d in runs_of
        )
        print(f"| mean | {taught_mean:.4f} | {alone_mean:.4f} | |")
    print(f"\nbaseline run: {baseline}\nteacher run: {teacher}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
