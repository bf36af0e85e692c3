"""Extractive QA on the pydoc questions: MiniLM fine-tuned vs the same architecture from
scratch vs a simple baseline, SQuAD v1.1 exact match and F1 on the test questions,
over three seeds.

    .venv/bin/python benchmarks/qa.py [--seeds 1 2 3] [--steps 80] [--runs-dir DIR]
        [--models minilm scratch] [--retrieve-passages K] [--retrieval-recall]

Runs recipes/qa_minilm.yaml and recipes/qa_scratch.yaml (`kplug run` in a child
process, once per seed: the seed sets the span head's (or the whole scratch model's)
initial weights, dropout and the data order; the split by paragraph is the same). To fit a
shared 2-core CPU each run trains one epoch of `--steps` batches of 8 and validates on 2%
of the paragraphs; the test questions (10% of the paragraphs) are always answered whole.

The baseline answers every question with the context sentence sharing the most distinct
normalized words with the question (SQuAD's normalization; the first such sentence on a
tie), with no training: it finds the right sentence, not the span. It is deterministic,
so its mean over seeds is its one score. Prints a Markdown table and the means.

`--retrieve-passages K` runs the models open-book (`objective.retrieve_passages.k=K`:
each question read against its K most similar paragraphs of the whole set, not its own);
the runs' retrieval report (the share of test questions whose own paragraph was found)
is printed after each row. `--retrieval-recall` only prints, for every question of the
set, how often its own paragraph is among the K passages retrieved (K = 1, 2, 3, 5), for
tf-idf vectors reduced to 128, 256 and 512 dimensions and unreduced.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_runs import kplug_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "pretrained MiniLM": "recipes/qa_minilm.yaml",
    "same architecture, scratch": "recipes/qa_scratch.yaml",
}
MODELS = dict(zip(("minilm", "scratch"), RECIPES, strict=True))
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def most_overlapping_sentence(question: str, context: str) -> str:
    """The context sentence sharing the most distinct normalized words with the question."""
    from kplug_transformers.squad_metrics import normalize_answer

    asked = set(normalize_answer(question).split())
    sentences = [s for s in SENTENCE_END.split(context) if s.strip()]
    return max(sentences, key=lambda s: len(asked & set(normalize_answer(s).split())))


def baseline_scores(validation_fraction: float) -> dict:
    """The baseline's exact match and F1 on the recipes' test questions."""
    from kplug_transformers.qa_data import PydocQAConfig, pydoc_records, split_records
    from kplug_transformers.squad_metrics import squad_scores

    config = PydocQAConfig(validation_fraction=validation_fraction)
    test = split_records(pydoc_records(), config)["test"]
    answers = {r.id: most_overlapping_sentence(r.question, r.context) for r in test}
    return squad_scores({r.id: [text for text, _ in r.answers] for r in test}, answers)


def retrieval_recall() -> None:
    """Recall at K of `PassageIndex` over all pydoc questions and paragraphs."""
    from kplug_retrieval.passages import PassageIndex
    from kplug_transformers.qa_data import pydoc_records

    records = pydoc_records()
    passages = list(dict.fromkeys(r.context for r in records))
    own = np.array([passages.index(r.context) for r in records])
    print(f"{len(records)} questions, {len(passages)} paragraphs\n")
    print("| dimension | recall@1 | recall@2 | recall@3 | recall@5 | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for dimension in (128, 256, 512, len(passages)):
        start = time.perf_counter()
        index = PassageIndex(passages, dimension)
        found = index.search([r.question for r in records], 5)
        seconds = time.perf_counter() - start
        recall = [float(np.mean((found[:, :k] == own[:, None]).any(axis=1))) for k in (1, 2, 3, 5)]
        print(f"| {index.index.d} | " + " | ".join(f"{r:.4f}" for r in recall)
              + f" | {seconds:.1f} |", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=80, help="training batches per run")
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--retrieve-passages", type=int, default=None, metavar="K")
    parser.add_argument("--retrieval-recall", action="store_true")
    args = parser.parse_args()
    if args.retrieval_recall:
        retrieval_recall()
        return 0
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="qa_"))
    validation_fraction = 0.02
    overrides = [f"train.steps_per_epoch={args.steps}", "train.epochs=1",
                 f"data.validation_fraction={validation_fraction}"]  # fmt: skip
    if args.retrieve_passages is not None:
        overrides.append(f"objective.retrieve_passages.k={args.retrieve_passages}")
    recipes = {MODELS[model]: RECIPES[MODELS[model]] for model in args.models}
    started = time.perf_counter()
    baseline = baseline_scores(validation_fraction)
    scores: dict[str, list[tuple[float, float]]] = {label: [] for label in recipes}
    print("| model | seed | test exact match | test F1 | train seconds |")
    print("|---|---|---|---|---|")
    print(f"| most-overlapping sentence | - | {baseline['exact_match']:.2f} | "
          f"{baseline['f1']:.2f} | 0 |", flush=True)  # fmt: skip
    for seed in args.seeds:
        for label, recipe in recipes.items():
            _, metrics = kplug_run(recipe, runs_dir, [f"seed={seed}", *overrides])
            scores[label].append((metrics["exact_match"], metrics["f1"]))
            print(f"| {label} | {seed} | {metrics['exact_match']:.2f} | {metrics['f1']:.2f} "
                  f"| {metrics['train_seconds']:.0f} |", flush=True)  # fmt: skip
            if "retrieve_passages" in metrics:
                print(f"retrieval: {json.dumps(metrics['retrieve_passages'])}", flush=True)
    print(f"\n{baseline['questions']} test questions")
    print(f"most-overlapping sentence: exact match {baseline['exact_match']:.2f}, "
          f"F1 {baseline['f1']:.2f}")  # fmt: skip
    for label, values in scores.items():
        em, f1 = ([v[i] for v in values] for i in (0, 1))
        spread = statistics.stdev(f1) if len(f1) > 1 else 0.0
        print(f"{label}: mean exact match {statistics.mean(em):.2f}, mean F1 "
              f"{statistics.mean(f1):.2f} (sd {spread:.2f}) over seeds {args.seeds}")  # fmt: skip
    print(f"{time.perf_counter() - started:.0f} s, runs in {runs_dir}; load average at the "
          f"end {os.getloadavg()[0]:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
