"""`kplug run RECIPE [OVERRIDES...]`: train, evaluate, compress and export."""

from __future__ import annotations

import argparse
import sys

from kplug.cli.common import add_recipe_arguments, load


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a recipe end to end",
        description="Run a recipe: the last line of stdout is the run directory.",
    )
    add_recipe_arguments(parser)
    parser.add_argument(
        "--smoke", action="store_true", help="a few steps of every stage, to catch errors fast"
    )
    parser.add_argument("--runs-dir", help="where run directories go (default: runs/)")
    parser.add_argument(
        "--trust-model",
        action="store_true",
        help="load model.init_from and teacher models even if they need unsafe "
        "deserialization (Lambda layers) or are legacy .h5 files; only for models you trust",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from kplug.runner import run

    recipe = load(args)
    result = run(
        recipe,
        runs_root=args.runs_dir,
        smoke=args.smoke,
        argv=sys.argv,
        trust_model=args.trust_model,
    )
    test = result.metrics.get("test") or {}
    if test:
        shown = "  ".join(f"{k}={v:.4f}" for k, v in test.items() if isinstance(v, float))
        print(f"test: {shown}")
    print(result.directory)
    return 0
