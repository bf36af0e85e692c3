"""`CompressionReport`: compression.json and compression.md in the run directory.

One row for the baseline (the model the first step received), one after each step and
one per exported file. Each row has the parameters, the non-zero parameters, the size of
the file it was measured on (raw and gzipped), the test metrics, how much the watched
metric (accuracy for classification) dropped against the baseline, and for TFLite files
the interpreter's single-example latency.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from kplug import KplugError, RunDirectory

STATE_KEY = "kplug_compress.report"
log = logging.getLogger("kplug")


class AccuracyDropError(KplugError):
    """A step or export lost more of the watched metric than its `max_accuracy_drop`."""


class CompressionReport:
    """The measured rows of one run's compression and exports.

    Args:
        directory: the run directory the report files go into.
        metric: the test metric judged (`accuracy`), from the objective's `monitor`.
        higher_is_better: the objective's `mode` is `max`.
        judge: the compiled baseline model, whose compiled metrics also score the
            predictions of models Keras 3 cannot evaluate (tf_keras, TFLite).
    """

    def __init__(self, directory: RunDirectory, metric: str, higher_is_better: bool,
                 judge: Any = None):  # fmt: skip
        self.directory = directory
        self.metric = metric
        self.higher_is_better = higher_is_better
        self.judge = judge
        self.rows: list[dict[str, Any]] = []

    @property
    def baseline(self) -> dict[str, Any]:
        return self.rows[0]

    def add(self, row: dict[str, Any], max_drop: float | None = None) -> dict[str, Any]:
        """Add a measured row, with its size ratio and metric drop against the baseline,
        and whether the drop is within `max_drop` (when given)."""
        if self.rows:
            base = self.baseline
            if row.get("gzip_bytes"):
                row["gzip_smaller_x"] = round(base["gzip_bytes"] / row["gzip_bytes"], 2)
            row["accuracy_drop"] = self.drop(row)
            if max_drop is not None and row["accuracy_drop"] is not None:
                row["max_accuracy_drop"] = max_drop
                row["within_max_drop"] = row["accuracy_drop"] <= max_drop
        self.rows.append(row)
        return row

    def drop(self, row: dict[str, Any]) -> float | None:
        """How much worse the watched metric is than the baseline's (positive: worse)."""
        before = self.baseline.get("test", {}).get(self.metric)
        after = row.get("test", {}).get(self.metric)
        if before is None or after is None:
            return None
        change = before - after if self.higher_is_better else after - before
        return round(change, 6)

    def enforce(self, row: dict[str, Any], *, smoke: bool) -> None:
        """Raise `AccuracyDropError` when the row lost more than its max_accuracy_drop;
        call it after `write`, so that the numbers are there to read. A smoke run's
        figures mean nothing, so it only logs."""
        if row.get("within_max_drop", True):
            return
        message = (
            f"{row['stage']}: test {self.metric} dropped by {row['accuracy_drop']:.4f} "
            f"({self.baseline['test'][self.metric]:.4f} -> {row['test'][self.metric]:.4f}), "
            f"more than its max_accuracy_drop of {row['max_accuracy_drop']}. See "
            f"{self.directory / 'compression.md'}; fine-tune longer, compress less, or "
            "raise max_accuracy_drop."
        )
        if smoke:
            log.info("smoke run, not enforced: %s", message)
            return
        raise AccuracyDropError(message)

    def write(self) -> None:
        self.directory.write_json("compression.json", {"metric": self.metric, "rows": self.rows})
        self.directory.write_text("compression.md", self.markdown())

    def markdown(self) -> str:
        lines = [
            "# Compression report",
            "",
            f"Watched metric: test {self.metric}; sizes of the files named (Keras files "
            "without optimizer state); `x smaller` compares gzipped sizes with the baseline.",
            "",
            "| stage | file | parameters | non-zero | bytes | gzipped | x smaller | "
            f"{self.metric} | drop | latency ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in self.rows:
            cells = [
                row["stage"],
                f"`{row['file']}`" if row.get("file") else "",
                _integer(row.get("parameters")),
                _integer(row.get("nonzero_parameters")),
                _integer(row.get("bytes")),
                _integer(row.get("gzip_bytes")),
                _number(row.get("gzip_smaller_x"), 2),
                _number(row.get("test", {}).get(self.metric), 4),
                _drop(row),
                _number(row.get("latency_ms"), 3),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        notes = [f"- {row['stage']}: {row['note']}" for row in self.rows if row.get("note")]
        if notes:
            lines += ["", *notes]
        details = [f"- {row['stage']}: `{json.dumps(row['details'])}`"
                   for row in self.rows if row.get("details")]  # fmt: skip
        if details:
            lines += ["", "## Step details", "", *details]
        return "\n".join(lines) + "\n"


def _drop(row: dict[str, Any]) -> str:
    text = _number(row.get("accuracy_drop"), 4)
    if row.get("within_max_drop") is False:
        text += f" > {row['max_accuracy_drop']} (failed)"
    return text


def _integer(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else ""


def _number(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else ""
