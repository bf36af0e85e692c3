"""`kplug recipes` lists the recipes that ship with kplug; `kplug recipes copy NAME [DEST]`
copies one (and the recipes it `extends:`) to edit, as torchtune's `tune ls` / `tune cp`."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from kplug.cli.common import table
from kplug.errors import KplugError

COMMAND = re.compile(r"\bkplug (run|tune|generate|launch|resume|sample)\b")


def add_to(subparsers) -> None:
    parser = subparsers.add_parser(
        "recipes",
        help="list the shipped recipes; `kplug recipes copy NAME [DEST]` copies one",
        description="List the recipes that ship with kplug, or copy one to edit.",
    )
    parser.add_argument("action", nargs="?", choices=("list", "copy"), default="list")
    parser.add_argument("name", nargs="?", help="copy: the recipe (as listed)")
    parser.add_argument("dest", nargs="?", help="copy: a file or folder (default: ./NAME.yaml)")
    parser.set_defaults(handler=handle)


def recipes_root() -> Path:
    """Where the shipped recipes are: the source checkout's `recipes/`, or the copy a wheel
    installs under `<prefix>/share/kplug/recipes`."""
    checkout = Path(__file__).resolve().parents[2] / "recipes"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "kplug" / "recipes"


def shipped() -> dict[str, Path]:
    """Recipe name (path under the root, no .yaml) -> file; bases (`_name.yaml`) left out."""
    root = recipes_root()
    return {
        str(p.relative_to(root).with_suffix("")): p
        for p in sorted(root.rglob("*.yaml"))
        if not p.name.startswith("_")
    }


def summary(path: Path) -> str:
    """The recipe's first comment line that is not a command to run it."""
    for line in path.read_text("utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text and not COMMAND.search(text) and not text.startswith(("Needs", "Resume")):
            return text
    return ""


def handle(args: argparse.Namespace) -> int:
    recipes = shipped()
    if args.action == "list":
        if not recipes:
            raise KplugError(f"no recipes found in {recipes_root()}; reinstall kplug.")
        print(table([[name, summary(p)] for name, p in recipes.items()], ["recipe", "about"]))
        return 0
    if not args.name or args.name not in recipes:
        known = ", ".join(recipes)
        raise KplugError(f"kplug recipes copy: unknown recipe {args.name!r}; shipped: {known}.")
    source = recipes[args.name]
    dest = Path(args.dest) if args.dest else Path(source.name)
    if dest.is_dir():
        dest = dest / source.name
    copies = [(source, dest), *_bases(source, dest.parent)]
    for _, target in copies:
        if target.exists():
            raise KplugError(
                f"{target} exists; kplug recipes copy never overwrites. Give "
                "another DEST, or remove it first."
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    for origin, target in copies:
        shutil.copyfile(origin, target)
        print(target)
    return 0


def _bases(recipe: Path, folder: Path) -> list[tuple[Path, Path]]:
    """The files a recipe `extends:` (relative names), recursively, copied beside it."""
    from kplug.recipe import yamlio

    data, _ = yamlio.parse(recipe.read_text("utf-8"), str(recipe))
    base = data.get("extends") if isinstance(data, dict) else None
    if not isinstance(base, str) or Path(base).is_absolute():
        return []
    origin = recipe.parent / base
    return [(origin, folder / base), *_bases(origin, folder)] if origin.is_file() else []
