"""Exact match and token F1 of extractive answers, as SQuAD v1.1's official
`evaluate-v1.1.py` computes them: answers normalized (lowercased, punctuation, the
articles a/an/the and extra whitespace removed), each prediction scored against every
gold answer of its question and the best score kept, the means reported in percent."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def metric_max_over_ground_truths(
    metric: Callable[[str, str], float], prediction: str, ground_truths: Iterable[str]
) -> float:
    return max(metric(prediction, truth) for truth in ground_truths)


def squad_scores(
    gold: Mapping[str, list[str]], predictions: Mapping[str, str]
) -> dict[str, float | int]:
    """`exact_match` and `f1` in percent over the questions of `gold` (id -> its answer
    texts); a question without a prediction scores 0, as in the official script."""
    exact_match = f1 = 0.0
    for question_id, truths in gold.items():
        prediction = predictions.get(question_id)
        if prediction is None:
            continue
        exact_match += metric_max_over_ground_truths(exact_match_score, prediction, truths)
        f1 += metric_max_over_ground_truths(f1_score, prediction, truths)
    total = max(len(gold), 1)
    return {
        "exact_match": round(100.0 * exact_match / total, 4),
        "f1": round(100.0 * f1 / total, 4),
        "questions": len(gold),
    }
