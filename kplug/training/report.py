"""What every run leaves for a person to read: `curves.png` (loss and each metric per
epoch, train and validation) and `report.md` (recipe summary, data report, final metrics,
the curves, and for classification a confusion matrix with per-class precision, recall
and F1 on the test split)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("kplug")
CURVES = "curves.png"
REPORT = "report.md"
# Test examples the confusion matrix is computed on, at most (predicting is cheap next to
# training, but a huge test split should not double a run's end).
MAX_REPORT_EXAMPLES = 50_000


def read_history(metrics_csv: Path) -> dict[str, list[float]]:
    """metrics.csv (Keras CSVLogger) as column -> values per epoch."""
    if not metrics_csv.is_file():
        return {}
    with metrics_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in (rows[0] if rows else {}) if c != "epoch"]
    return {c: [_float(row.get(c)) for row in rows] for c in columns}


def plot_curves(histories: dict[str, dict[str, list[float]]], path: Path, title: str) -> Path:
    """One panel per metric (loss first), a line per run and split; `histories` maps a
    label (a run) to its history. Returns `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(
        {k.removeprefix("val_") for h in histories.values() for k in h if k != "learning_rate"},
        key=lambda n: (n != "loss", n),
    )
    names = names or ["loss"]
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        for label, history in histories.items():
            prefix = f"{label} " if len(histories) > 1 else ""
            for key, split in ((name, "train"), (f"val_{name}", "validation")):
                values = history.get(key)
                if values:
                    epochs = range(1, len(values) + 1)
                    axis.plot(
                        epochs,
                        values,
                        marker="o",
                        markersize=3,
                        linestyle="-" if split == "train" else "--",
                        label=f"{prefix}{split}",
                    )
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def classification_figures(
    model: Any, split: Any, class_names: list[str], limit: int | None = None
) -> dict[str, Any] | None:
    """Confusion matrix and per-class precision/recall/F1 of `model` on a labelled split
    (NumPy `(x, y)` or an unbatched tf.data of `(x, y)`); None when the model's outputs are
    not one score per class."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    x, y = _labelled_arrays(split, min(limit or MAX_REPORT_EXAMPLES, MAX_REPORT_EXAMPLES))
    if y is None or not len(y):
        return None
    scores = model.predict(x, verbose=0, batch_size=64)
    if isinstance(scores, dict) or np.ndim(scores) != 2 or scores.shape[1] != len(class_names):
        return None
    y = np.argmax(y, axis=1) if np.ndim(y) == 2 else np.asarray(y).reshape(-1)
    predicted = np.argmax(scores, axis=1)
    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    return {
        "examples": len(y),
        "accuracy": float(np.mean(predicted == y)),
        "confusion_matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
        "per_class": [
            {
                "class": name,
                "precision": float(p),
                "recall": float(r),
                "f1": float(f),
                "support": int(s),
            }
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
        ],
    }


def markdown_report(
    recipe_yaml: str, data_report: dict, metrics: dict, classes: dict[str, Any] | None, name: str
) -> str:
    lines = [f"# Run report: {name}", "", "## Recipe", "", "```yaml", recipe_yaml.strip(), "```"]
    lines += ["", "## Data", "", "```json", json.dumps(data_report, indent=2, default=str), "```"]
    lines += ["", "## Final metrics", "", "| split | metric | value |", "|---|---|---|"]
    for split in ("train", "validation", "test"):
        for key, value in (metrics.get(split) or {}).items():
            lines.append(f"| {split} | {key} | {_cell(value)} |")
    for key in ("epochs", "train_seconds", "samples_per_second"):
        if metrics.get(key) is not None:
            lines.append(f"| | {key} | {_cell(metrics[key])} |")
    lines += ["", "## Training curves", "", f"![training curves]({CURVES})"]
    if classes:
        names = [row["class"] for row in classes["per_class"]]
        lines += [
            "",
            f"## Test split: {classes['examples']} examples, accuracy {classes['accuracy']:.4f}",
            "",
            "Confusion matrix (rows: true class, columns: predicted):",
            "",
            "| | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for name, row in zip(names, classes["confusion_matrix"], strict=True):
            lines.append(f"| **{name}** | " + " | ".join(str(v) for v in row) + " |")
        lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for row in classes["per_class"]:
            lines.append(
                f"| {row['class']} | {row['precision']:.4f} | {row['recall']:.4f} | "
                f"{row['f1']:.4f} | {row['support']} |"
            )
    return "\n".join(lines) + "\n"


def write_run_report(ctx: Any, metrics: dict[str, Any]) -> None:
    """curves.png and report.md into the run directory (after metrics.json)."""
    directory = ctx.directory
    history = read_history(directory / "metrics.csv")
    plot_curves({ctx.recipe.name: history}, directory / CURVES, ctx.recipe.name)
    classes = None
    spec = ctx.data.spec
    if spec.class_names and ctx.data.test is not None:
        limit = ctx.recipe.data.options.batch_size * 2 if ctx.smoke else None
        classes = classification_figures(ctx.model, ctx.data.test, spec.class_names, limit)
        if classes:
            directory.write_json("test_classes.json", classes)
    data_report = _read_json(directory / "data_report.json")
    text = markdown_report(ctx.recipe.to_yaml(), data_report, metrics, classes, ctx.recipe.name)
    directory.write_text(REPORT, text)


def _labelled_arrays(split: Any, limit: int) -> tuple[Any, np.ndarray | None]:
    if split is None:
        return None, None
    if isinstance(split, tuple):
        x, y = split[0], split[1]
        if y is None:
            return None, None
        x = {k: v[:limit] for k, v in x.items()} if isinstance(x, dict) else x[:limit]
        return x, np.asarray(y)[:limit]
    xs, ys = [], []
    for x, y in split.take(limit).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        return None, None
    if isinstance(xs[0], dict):
        return {k: np.stack([x[k] for x in xs]) for k in xs[0]}, np.stack(ys)
    return np.stack(xs), np.stack(ys)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
