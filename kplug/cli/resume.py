"""`kplug resume RUN_DIR [OVERRIDES...]`: continue a run from its newest valid checkpoint."""

from __future__ import annotations

import argparse

from kplug.cli.common import add_trust_model_argument
from kplug.cli.run import OVERRIDES_HELP, run_and_report


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "resume",
        help="continue an interrupted run at the exact step",
        description="Continue a run from its newest valid checkpoint (a corrupt one is "
        "skipped with a warning). Epochs, the learning rate, logging and export may change; "
        "a changed model, data, objective or seed is refused. The last line of stdout is the "
        "run directory (docs/reliability.md).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the directory `kplug run` printed")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    parser.add_argument(
        "--recipe", help="the recipe to compare and continue with (default: the run's own)"
    )
    parser.add_argument(
        "--from-step",
        type=int,
        metavar="STEP",
        help="continue from the checkpoint of this global step instead of the newest (e.g. "
        "the last sane one a NaN stop names); the newer ones are moved aside, not deleted",
    )
    add_trust_model_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    return run_and_report(args.recipe, list(args.overrides), args, resume=args.run_dir)
