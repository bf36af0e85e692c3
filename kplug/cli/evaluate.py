"""`kplug evaluate RUN_DIR [data.KEY=VALUE...] [--split test]`: the run's metrics on
another dataset or split, written to RUN_DIR/evaluations/<UTC time>.json."""

from __future__ import annotations

import argparse

from kplug.cli.common import add_trust_model_argument, print_json


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="a finished run's metrics on other data: kplug evaluate RUN_DIR data.path=new.csv",
        description="Evaluate a finished run's model with its own loss and metrics on a split "
        "of its dataset, changed by data overrides (data.path=new.csv, data.test_path=...). "
        "The run's preprocessing (as plugins pin it) and sequence lengths are kept. The "
        "result is printed and "
        "written to RUN_DIR/evaluations/<UTC time>.json.",
    )
    parser.add_argument("run_dir", help="a run directory, or runs/<name> (its newest run)")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="data.KEY=VALUE",
        help="change the data section, e.g. data.path=new.csv",
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=("train", "validation", "test", "all"),
        help="which split of the data (all: every example; for a new file "
        "with data.validation_fraction=0 data.test_fraction=0 use train)",
    )
    add_trust_model_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import sys

    from kplug.inference.prediction import evaluate

    record, path = evaluate(
        args.run_dir, args.overrides, split=args.split, trust_model=args.trust_model, argv=sys.argv
    )
    print_json(
        {
            "split": record["split"],
            "examples": record["examples"],
            "metrics": record["metrics"],
            "written": str(path),
        }
    )
    return 0
