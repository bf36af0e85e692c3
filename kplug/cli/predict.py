"""`kplug predict RUN_DIR INPUT... [--text ...] [--out FILE] [--top-k K]`: the run's
predictions on new inputs, preprocessed as in training; CSV or JSONL."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from kplug.cli.common import add_trust_model_argument
from kplug.errors import KplugError


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict with a finished run's model: kplug predict RUN_DIR INPUT",
        description="Predict with a finished run's model. INPUT is what the run's dataset "
        "reads: image files or a folder (image datasets), .npy/.csv arrays, .txt (one input "
        "per line) / .csv / .jsonl files or --text (text datasets). Classifiers give each "
        "input's class, its probability and the top k; language models a continuation.",
    )
    parser.add_argument("run_dir", help="a run directory, or runs/<name> (its newest run)")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="input files or folders")
    parser.add_argument("--text", action="append", default=[], help="an input text (repeatable)")
    parser.add_argument(
        "--pair",
        action="append",
        default=[],
        help="the second text of each --text, for sentence-pair models",
    )
    parser.add_argument("--out", help="write here (.csv or .jsonl); default: CSV on stdout")
    parser.add_argument("--top-k", type=int, default=3, help="classes listed per input")
    parser.add_argument("--max-tokens", type=int, default=50, help="language models: tokens")
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.0,
        help="language models: 0 greedy (default), above 0 sampling",
    )
    parser.add_argument("--seed", type=int, default=0, help="language models: sampling seed")
    add_trust_model_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from kplug.inference.prediction import predict

    if args.top_k < 1 or args.max_tokens < 0 or args.temperature < 0:
        raise KplugError("--top-k must be >= 1, --max-tokens and --temperature >= 0.")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix not in (".csv", ".jsonl"):
        raise KplugError(f"--out {out}: write a .csv or a .jsonl file.")
    rows = predict(
        args.run_dir,
        paths=args.inputs,
        texts=args.text,
        pairs=args.pair,
        top_k=args.top_k,
        options={
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "top_k": 0,
            "seed": args.seed,
        },
        trust_model=args.trust_model,
    )
    text = jsonl(rows) if out is not None and out.suffix == ".jsonl" else csv_text(rows)
    if out is None:
        sys.stdout.write(text)
    else:
        from kplug.rundir import write_atomically

        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(out, text.encode("utf-8"))
        print(f"{len(rows)} predictions: {out}", file=sys.stderr)
    return 0


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def csv_text(rows: list[dict[str, Any]]) -> str:
    """One CSV row per prediction; list values (the top k) as `name:probability;...`."""
    buffer = io.StringIO()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ";".join(f"{v[0]}:{v[1]}" if isinstance(v, list) else str(v) for v in value)
    return value
