"""`kplug run RECIPE [OVERRIDES...] [--resume RUN_DIR]`: train, evaluate, compress, export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kplug.cli.common import add_trust_model_argument
from kplug.errors import KplugError

OVERRIDES_HELP = (
    "override recipe keys, e.g. train.epochs=1 optimizer.learning_rate=3e-4; ~key deletes a key"
)


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a recipe end to end",
        description="Run a recipe: the last line of stdout is the run directory.",
    )
    parser.add_argument(
        "recipe", nargs="?", help="recipe YAML file (with --resume: the run's own by default)"
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    parser.add_argument(
        "--smoke", action="store_true", help="a few steps of every stage, to catch errors fast"
    )
    parser.add_argument("--runs-dir", help="where run directories go (default: runs/)")
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue this run from its newest valid checkpoint, at the exact step",
    )
    add_trust_model_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    recipe, overrides = args.recipe, list(args.overrides)
    if args.resume and recipe and _looks_like_override(recipe):
        recipe, overrides = None, [recipe, *overrides]
    if recipe is None and not args.resume:
        raise KplugError("kplug run needs a RECIPE file (or --resume RUN_DIR to continue a run).")
    return run_and_report(recipe, overrides, args, resume=args.resume)


def run_and_report(
    recipe_path: str | None, overrides: list[str], args: argparse.Namespace, *, resume: str | None
) -> int:
    """Load the recipe (a resumed run's own by default), run it and print the result."""
    from kplug.runner import run
    from kplug.stages import load_recipe

    if resume is not None:
        from kplug.rundir import RunDirectory

        recipe_path = recipe_path or str(RunDirectory.open(resume) / "recipe.resolved.yaml")
    recipe = load_recipe(recipe_path, overrides)
    result = run(
        recipe,
        runs_root=getattr(args, "runs_dir", None),
        smoke=getattr(args, "smoke", False),
        argv=sys.argv,
        resume=resume,
        trust_model=getattr(args, "trust_model", False),
        from_step=getattr(args, "from_step", None),
    )
    test = result.metrics.get("test") or {}
    if test:
        shown = "  ".join(f"{k}={v:.4f}" for k, v in test.items() if isinstance(v, float))
        print(f"test: {shown}")
    print(result.directory)
    return 0


def _looks_like_override(text: str) -> bool:
    return ("=" in text or text.startswith("~")) and not Path(text).is_file()
