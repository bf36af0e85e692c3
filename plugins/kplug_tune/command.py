"""`kplug tune RECIPE [OVERRIDES]`: search the recipe's `search:` space.

The tune directory (`runs/<name>-tune/<timestamp>/`, or `--directory`) holds KerasTuner's
project (`keras_tuner/`), every trial's run (`trials/trial-<id>/`), the results
(`results.csv`, `results.json`, `results.png`) and `best.yaml`. Running `kplug tune` again
on the same directory continues the search; finished trials are not run again.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kplug import (
    KplugError,
    Recipe,
    RecipeError,
    RunDirectory,
    RunError,
    add_recipe_arguments,
    add_trust_model_argument,
    default_runs_root,
    utc_now,
)

STORED_RECIPE = "tune.yaml"


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    add_recipe_arguments(parser)
    place = parser.add_mutually_exclusive_group()
    place.add_argument(
        "--runs-dir", help="where the tune directory goes: <runs-dir>/<name>-tune/<timestamp>"
    )
    place.add_argument(
        "--resume",
        metavar="TUNE_DIR",
        help="continue the search in TUNE_DIR (printed by an earlier kplug tune); "
        "finished trials are not run again",
    )
    place.add_argument(
        "--directory",
        metavar="DIR",
        help="tune in DIR: created if missing, continued if it holds this search; on a "
        "cluster the chief and every worker get the same shared DIR",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="run N worker processes here and a chief oracle on 127.0.0.1 "
        "(KerasTuner's distributed protocol)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="at most 2 trials, each a smoke run: errors fast"
    )
    add_trust_model_argument(parser)
    return handle


def handle(args: argparse.Namespace) -> int:
    from kplug import recipe_from_args as load
    from kplug import set_up
    from kplug_tune.search import WORKERS_STATE, role
    from kplug_tune.workers import LocalWorkers

    recipe = load(args)
    if recipe.section("search") is None:
        raise RecipeError(
            f"{args.recipe}: there is no search: section to tune; add one, e.g. search: "
            "{tuner: grid, space: {optimizer.learning_rate: [0.001, 0.01, 0.1]}} "
            "(see docs/tuning.md)"
        )
    where = role()
    if args.workers < 0:
        raise KplugError(f"--workers {args.workers}: give a number of worker processes, 1 or more")
    if args.workers and where != "alone":
        raise RunError(
            "--workers starts its own chief and workers on this machine: unset "
            "KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT, or set them "
            "without --workers to join a cluster (docs/tuning.md)."
        )
    ctx = set_up(recipe, strategy=False, smoke=args.smoke, argv=list(sys.argv),
                 trust_model=args.trust_model)  # fmt: skip
    searcher = ctx.build(recipe.section("search"))
    directory = ctx.directory = tune_directory(args, recipe, where)
    if where == "worker":
        searcher.search(ctx)
        return 0

    status = "failed"
    try:
        if args.workers:
            arguments = ["tune", args.recipe, *args.overrides, "--directory", str(directory)]
            arguments += ["--smoke"] if args.smoke else []
            arguments += ["--trust-model"] if args.trust_model else []
            with LocalWorkers(args.workers, arguments, directory / "workers") as workers, \
                    workers.chief():  # fmt: skip
                ctx.state[WORKERS_STATE] = workers
                searcher.search(ctx)
        else:
            searcher.search(ctx)
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        again = " ".join(["kplug tune", args.recipe, *args.overrides, "--resume", str(directory)])
        print(f"kplug tune: interrupted; continue with: {again}", file=sys.stderr)
        raise
    finally:
        directory.update_manifest(status=status, finished=utc_now())
    print(directory)
    return 0


def tune_directory(args: argparse.Namespace, recipe: Recipe, where: str) -> RunDirectory:
    """The directory to tune in: new, given, or resumed; refuses one that holds a search of
    another recipe."""
    if args.resume:
        directory = RunDirectory(args.resume)
        if directory.manifest().get("kind") != "tune":
            raise RunError(
                f"{args.resume} is not a kplug tune directory (no manifest.json of a tune); "
                "give the directory an earlier kplug tune printed, or --directory DIR to "
                "start a search there."
            )
    elif args.directory:
        try:
            Path(args.directory).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(f"cannot create {args.directory}: {error.strerror}") from None
        directory = RunDirectory(args.directory)
    elif where == "worker":
        raise RunError(
            f"this process is worker {os.environ['KERASTUNER_TUNER_ID']} of a distributed "
            "search: give it --directory DIR, the directory its chief tunes in."
        )
    else:
        directory = RunDirectory.create(args.runs_dir or default_runs_root(), f"{recipe.name}-tune")
    _check_same_search(directory, recipe, args.smoke, where)
    return directory


def _check_same_search(directory: RunDirectory, recipe: Recipe, smoke: bool, where: str) -> None:
    stored = directory / STORED_RECIPE
    manifest = directory.manifest()
    if stored.is_file():
        from kplug import parse_yaml

        before, _ = parse_yaml(stored.read_text("utf-8"), str(stored))
        changed = _differences(before, recipe.resolved())
        if changed:
            raise RunError(
                f"{directory} holds a search of another recipe (it differs in "
                f"{', '.join(changed[:8])}); give the same recipe and overrides to continue "
                "it, or another directory."
            )
    if manifest and manifest.get("smoke") != smoke:
        raise RunError(
            f"{directory} holds a {'smoke ' if manifest.get('smoke') else ''}search; "
            f"{'add' if manifest.get('smoke') else 'drop'} --smoke to continue it."
        )
    if where == "worker":
        return  # the chief keeps the directory's files
    if not stored.is_file():
        directory.write_text(STORED_RECIPE, recipe.to_yaml())
    now = utc_now()
    if manifest:
        directory.update_manifest(status="running", command=list(sys.argv),
                                  resumed=[*manifest.get("resumed", []), now])  # fmt: skip
    else:
        from kplug import library_versions as versions

        directory.write_json("manifest.json", {
            "kind": "tune", "name": recipe.name, "tuner": recipe.section("search").name,
            "status": "running", "started": now, "command": list(sys.argv),
            "recipe_source": recipe.source, "smoke": smoke, "versions": versions(),
            "host": platform.node(), "pid": os.getpid(),
        })  # fmt: skip


def _differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved recipes."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            out += _differences(before.get(key), after.get(key), f"{path}{key}.")
        return out
    return [] if before == after else [path.rstrip(".") or "(the whole recipe)"]
