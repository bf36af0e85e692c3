"""`kplug compare RUN_DIR... [--plot FILE]`: the recipe keys that differ between runs,
their final metrics side by side, and their training curves overlaid in one plot."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kplug.cli.common import table
from kplug.errors import KplugError


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare runs: differing recipe keys, final metrics, overlaid curves",
        description="Print a table of the recipe keys that differ between the runs and of "
        "their final metrics (metrics.json), and write their training curves overlaid.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="two or more runs")
    parser.add_argument("--plot", default="compare.png", help="the overlay plot (PNG)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from kplug.recipe import yamlio
    from kplug.training.report import plot_curves, read_history

    if len(args.run_dirs) < 2:
        raise KplugError("kplug compare needs two or more run directories.")
    runs = [Path(p) for p in args.run_dirs]
    for run in runs:
        if not (run / "recipe.resolved.yaml").is_file():
            raise KplugError(f"{run} is not a kplug run directory (no recipe.resolved.yaml).")
    recipes = [
        flatten(yamlio.parse((r / "recipe.resolved.yaml").read_text("utf-8"), str(r))[0])
        for r in runs
    ]
    metrics = [flatten(_json(r / "metrics.json")) for r in runs]
    labels = [label(r) for r in runs]
    keys = sorted({k for f in recipes for k in f}, key=str)
    differing = [k for k in keys if len({repr(f.get(k)) for f in recipes}) > 1]
    shown = [
        k
        for k in sorted({k for m in metrics for k in m})
        if k.split(".")[0] in ("test", "validation", "train") or k in ("epochs", "train_seconds")
    ]
    rows = [[f"recipe {k}", *(_short(f.get(k)) for f in recipes)] for k in differing]
    rows += [[k, *(_short(m.get(k)) for m in metrics)] for k in shown]
    print(table(rows, ["", *labels]))
    histories = {lab: read_history(r / "metrics.csv") for lab, r in zip(labels, runs, strict=True)}
    plot = plot_curves(histories, Path(args.plot), "kplug compare")
    print(f"curves: {plot}")
    return 0


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as dotted keys (`optimizer.learning_rate`, `clean.0.name`)."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        items = ((str(i), v) for i, v in enumerate(data))
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def label(run: Path) -> str:
    """`name/timestamp` of a run directory."""
    return f"{run.resolve().parent.name}/{run.resolve().name}"


def _json(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
