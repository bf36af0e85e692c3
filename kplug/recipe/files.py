"""Recipe files: YAML read with line numbers, merged over their `extends:` bases."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from kplug.errors import RecipeError
from kplug.recipe import yamlio
from kplug.recipe.overrides import Origin, copy_data
from kplug.recipe.recipe import Recipe
from kplug.registry import Registry

# A recipe is a page of settings: refuse files and `extends:` graphs far beyond that
# before parsing them.
MAX_RECIPE_BYTES = 1 << 20
MAX_RECIPE_FILES = 64


def load_recipe(
    path: str | os.PathLike, overrides: Iterable[str] = (), *, registry: Registry
) -> Recipe:
    """Load, merge, override and validate a recipe file (fires no hook).

    Args:
        path: the YAML file.
        overrides: `key.sub=value` and `~key.sub` strings, applied last.
        registry: the component registry to validate against.

    Raises:
        RecipeError: listing every problem, each with file:line and key path.
    """
    origins: dict[tuple, Origin] = {}
    data = _load_file(Path(path), origins, chain=(), loaded={})
    return Recipe.from_dict(
        data, source=str(path), overrides=overrides, registry=registry, lines=origins
    )


def _load_file(
    path: Path, origins: dict[tuple, Origin], chain: tuple[Path, ...], loaded: dict
) -> dict:
    """One recipe file merged over its `extends:` bases. `loaded` holds each file already
    read in this load (a base that several recipes of the graph extend is read once)."""
    shown = str(path)
    if not path.exists():
        raise RecipeError(f"recipe file not found: {shown} (check the path; cwd is {os.getcwd()})")
    if not path.is_file():
        raise RecipeError(f"{shown} is not a file: give the path of a recipe YAML file.")
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise RecipeError(f"{shown}: the recipe extends itself ({cycle}); remove the cycle.")
    if resolved in loaded:
        data, file_origins = loaded[resolved]
        origins.update(file_origins)
        return copy_data(data)
    if len(loaded) + len(chain) >= MAX_RECIPE_FILES:
        raise RecipeError(
            f"{shown}: recipe too large: its `extends:` graph names more than "
            f"{MAX_RECIPE_FILES} files; a recipe extends a few bases."
        )
    mine: dict[tuple, Origin] = {}
    data = _read_recipe_file(path, shown, mine, chain + (resolved,), loaded)
    loaded[resolved] = (data, mine)
    origins.update(mine)
    return copy_data(data)


def _read_recipe_file(
    path: Path, shown: str, origins: dict[tuple, Origin], chain: tuple[Path, ...], loaded: dict
) -> dict:
    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise RecipeError(
                f"{shown}: recipe too large ({path.stat().st_size:,} bytes; at most "
                f"{MAX_RECIPE_BYTES:,}); a recipe is a page of settings."
            )
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(
            f"{shown}: not UTF-8 text (byte {error.start}); save the recipe as UTF-8."
        ) from None
    except OSError as error:
        raise RecipeError(f"{shown}: cannot read the recipe: {error.strerror}") from None
    if "\x00" in text:
        raise RecipeError(f"{shown}: binary data, not a YAML recipe.")
    data, lines = yamlio.parse(text, shown)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(
            f"{shown}:1: a recipe is a mapping of sections (data:, model:, ...), "
            f"not a {type(data).__name__}."
        )
    here = {p: f"{shown}:{line}" for p, line in lines.items()}
    base_ref = data.pop("extends", None)
    if base_ref is None:
        origins.update(here)
        return data
    refs = base_ref if isinstance(base_ref, list) else [base_ref]
    merged: dict = {}
    for ref in refs:
        if not isinstance(ref, str) or not ref:
            raise RecipeError(f"{here[('extends',)]}: extends: give a recipe path (a string).")
        base_path = Path(ref) if Path(ref).is_absolute() else path.parent / ref
        if not base_path.exists():
            raise RecipeError(
                f"{here[('extends',)]}: extends: base recipe {ref!r} not found "
                f"(looked for {base_path})."
            )
        base = _load_file(base_path, origins, chain, loaded)
        merged = merge(merged, base)
    origins.update(here)
    return merge(merged, data)


def merge(base: dict, top: dict) -> dict:
    """Deep-merge `top` over `base`. A section whose component `name` changes is replaced
    whole: parameters of a different component never leak into it."""
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if (
            isinstance(old, dict)
            and isinstance(value, dict)
            and not ("name" in value and "name" in old and value["name"] != old["name"])
        ):
            out[key] = merge(old, value)
        else:
            out[key] = value
    return out
