"""What a search leaves in its directory: the results table (CSV, JSON), a plot of the
metric per trial (PNG) and best.yaml; and the progress lines printed while it runs."""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path
from typing import Any

from kplug import Recipe, RunDirectory, apply_overrides, dump_yaml
from kplug import format_table as table
from kplug_tune.config import SearchConfig
from kplug_tune.recipe_tuner import TRIALS, read_record, shown, value_text
from kplug_tune.space import values_of

STATUS = {"COMPLETED": "completed", "FAILED": "failed", "INVALID": "failed",
          "RUNNING": "unfinished"}  # fmt: skip


class Results:
    """The table of a search's trials, from the oracle and each trial's result.json.

    Args:
        directory: the tune directory.
        tuner: the tuner's name, for the plot's title.
        config: the `search:` section.
        metric: the metric trials are judged by; `direction`: `min` or `max`.
    """

    def __init__(self, directory: Path, tuner: str, config: SearchConfig, metric: str,
                 direction: str):  # fmt: skip
        self.directory = RunDirectory(directory)
        self.tuner = tuner
        self.config = config
        self.metric = metric
        self.direction = direction

    def rows(self, oracle: Any) -> list[dict[str, Any]]:
        """One row per trial the oracle started, in trial order."""
        out = []
        for trial_id in sorted(oracle.trials):
            trial = oracle.trials[trial_id]
            record = self.record(trial_id) if trial.status == "COMPLETED" else {}
            values = record.get("values") or values_of(self.config, trial.hyperparameters)
            if "tuner/epochs" in trial.hyperparameters.values:
                values = {**values, "train.epochs": trial.hyperparameters.values["tuner/epochs"]}
            out.append(
                {
                    "trial": trial_id,
                    "status": STATUS.get(trial.status, trial.status.lower()),
                    "values": values,
                    "value": record.get("value"),
                    "seconds": record.get("seconds"),
                    "worker": record.get("worker", ""),
                    "metrics": record.get("metrics", {}),
                    "runs": [e["run"] for e in record.get("executions", [])],
                    "overrides": record.get("overrides", []),
                    "message": _last_line(trial.message) if trial.status != "COMPLETED" else "",
                }
            )
        return out

    def record(self, trial_id: str) -> dict[str, Any]:
        return read_record(self.directory / TRIALS, trial_id)

    def best(self, oracle: Any, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        best = oracle.get_best_trials(1)
        if not best or best[0].status != "COMPLETED":
            return None
        return next(row for row in rows if row["trial"] == best[0].trial_id)

    def write(self, oracle: Any, recipe: Recipe) -> dict[str, Any]:
        """Write results.csv, results.json, results.png and best.yaml, print the table,
        and return what results.json holds."""
        rows = self.rows(oracle)
        best = self.best(oracle, rows)
        summary = {
            "tuner": self.tuner,
            "metric": self.metric,
            "direction": self.direction,
            "best": best,
            "trials": rows,
        }
        self.directory.write_json("results.json", summary)
        self.directory.write_text("results.csv", self.csv(rows))
        if any(row["value"] is not None for row in rows):
            self.plot(rows, best)
        if best is not None:
            self.directory.write_text("best.yaml", self.best_yaml(recipe, best))
        print(self.text(rows, best), flush=True)
        return summary

    def columns(self, rows: list[dict[str, Any]]) -> list[str]:
        keys = list(self.config.space)
        keys += [k for row in rows for k in row["values"] if k not in keys]
        return keys

    def csv(self, rows: list[dict[str, Any]]) -> str:
        keys = self.columns(rows)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["trial", "status", *keys, self.metric, "seconds", "worker"])
        for row in rows:
            shown_values = [value_text(row["values"][k]) if k in row["values"] else ""
                            for k in keys]  # fmt: skip
            writer.writerow([row["trial"], row["status"], *shown_values, _or_blank(row["value"]),
                             _or_blank(row["seconds"]), row["worker"]])  # fmt: skip
        return buffer.getvalue()

    def text(self, rows: list[dict[str, Any]], best: dict[str, Any] | None) -> str:
        keys = self.columns(rows)
        lines = [
            [row["trial"], row["status"],
             *(value_text(row["values"][k]) if k in row["values"] else "-" for k in keys),
             _number(row["value"]), _number(row["seconds"], ".1f"), row["worker"]]
            for row in rows
        ]  # fmt: skip
        out = table(lines, ["trial", "status", *keys, self.metric, "seconds", "worker"])
        if best is not None:
            out += (
                f"\nbest: trial {best['trial']}, {self.metric}={best['value']:.4f} "
                f"({self.direction}): {shown(best['values'])}\n"
                f"run it: kplug run {self.directory / 'best.yaml'}"
            )
        return out

    def plot(self, rows: list[dict[str, Any]], best: dict[str, Any] | None) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        done = [(index, row) for index, row in enumerate(rows) if row["value"] is not None]
        figure, axes = plt.subplots(figsize=(max(6.0, 0.45 * len(rows)), 4.0))
        axes.plot([i for i, _ in done], [r["value"] for _, r in done], "o-", color="tab:blue")
        if best is not None:
            index = next(i for i, row in done if row["trial"] == best["trial"])
            axes.plot([index], [best["value"]], "*", markersize=16, color="tab:orange",
                      label=f"best: trial {best['trial']}")  # fmt: skip
            axes.legend()
        axes.set_xticks(range(len(rows)), [row["trial"] for row in rows], rotation=45)
        axes.set_xlabel("trial")
        axes.set_ylabel(f"{self.metric} ({self.direction} is better)")
        axes.set_title(f"{self.tuner} search: {self.metric} per trial")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        temporary = self.directory.temporary_path("results.png")
        figure.savefig(temporary, dpi=100)
        plt.close(figure)
        return self.directory.commit(temporary, "results.png")

    def best_yaml(self, recipe: Recipe, best: dict[str, Any]) -> str:
        """The tuned recipe with the best trial's values, without `search:`, validated."""
        data = apply_overrides(copy.deepcopy(recipe.raw), ["~search", *best["overrides"]])
        Recipe.from_dict(data, source=str(self.directory / "best.yaml"), registry=recipe.registry)
        header = (
            f"# kplug run {self.directory / 'best.yaml'}\n"
            f"# The best trial ({best['trial']}, {self.metric}={best['value']:.4f}) of "
            f"`kplug tune {recipe.source}`:\n"
            "# that recipe with the trial's values filled in and its search: section removed.\n"
        )
        return header + dump_yaml(data)


class Progress:
    """Prints one line per ended trial while a search runs.

    It reads the oracle's `end_order` and `trials` only (a chief's gRPC thread changes
    them meanwhile) and keeps the best value itself, from the trials' records.

    Args:
        results: the search's `Results` (for each trial's record).
        total: trials the search will run, when known.
    """

    def __init__(self, results: Results, total: int | None):
        self.results = results
        self.total = total
        self.reported: set[str] = set()
        self.best: tuple[float, str] | None = None

    def resume(self, oracle: Any) -> None:
        """Count the trials that ended before this process started, without printing."""
        for trial_id in list(oracle.end_order):
            self.reported.add(trial_id)
            self._keep_best(self.results.record(trial_id))

    def after_trial(self, trial: Any, oracle: Any) -> None:
        self.update(oracle)

    def update(self, oracle: Any) -> None:
        """Report every trial the oracle has ended since the last call."""
        for trial_id in list(oracle.end_order):
            if trial_id not in self.reported:
                self.reported.add(trial_id)
                self.trial_ended(oracle.trials[trial_id])

    def trial_ended(self, trial: Any) -> None:
        record = self.results.record(trial.trial_id) if trial.status == "COMPLETED" else {}
        count = f" ({len(self.reported)} of {self.total})" if self.total else ""
        if not record:
            print(f"kplug tune: trial {trial.trial_id}{count} {STATUS.get(trial.status, '')}: "
                  f"{_last_line(trial.message)}", flush=True)  # fmt: skip
            return
        self._keep_best(record)
        value, best_trial = self.best
        print(
            f"kplug tune: trial {trial.trial_id}{count} by {record['worker']}: "
            f"{shown(record['values'])} -> {self.results.metric}={record['value']:.4f} "
            f"in {record['seconds']:.1f}s; best {value:.4f} (trial {best_trial})",
            flush=True,
        )

    def report_own(self, trial: Any, oracle: Any) -> None:
        """A worker's line for a trial it ran (the chief prints the whole picture)."""
        record = self.results.record(trial.trial_id)
        if record:
            print(f"kplug tune: trial {trial.trial_id} done by {record['worker']}: "
                  f"{self.results.metric}={record['value']:.4f} in {record['seconds']:.1f}s",
                  flush=True)  # fmt: skip
        else:
            print(f"kplug tune: trial {trial.trial_id} {trial.status.lower()}: "
                  f"{_last_line(trial.message)}", flush=True)  # fmt: skip

    def _keep_best(self, record: dict[str, Any]) -> None:
        if not record:
            return
        value = record["value"]
        better = max if self.results.direction == "max" else min
        if self.best is None or better(value, self.best[0]) != self.best[0]:
            self.best = (value, record["trial"])


def _last_line(message: str | None) -> str:
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _number(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _or_blank(value: Any) -> Any:
    return "" if value is None else value
