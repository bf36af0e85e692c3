"""Training a recipe's tokenizer and keeping it in the run directory.

A saved tokenizer is a folder (`RUN_DIR/tokenizer/`) holding the vocabulary file its
component writes and `kplug_tokenizer.json` (the component name and resolved config), so
`load_tokenizer(folder)` rebuilds it through the registry, whichever plugin registered it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kplug
from kplug_text.components import Tokenizer

METADATA = "kplug_tokenizer.json"
FOLDER = "tokenizer"


def train_tokenizer(entry: dict[str, Any], texts: list[str], ctx: kplug.RunContext):
    """Build the tokenizer a resolved `tokenizer:` entry names; load its `vocabulary_file`
    if it has one, else train it on `texts`."""
    tokenizer = ctx.build_nested("tokenizer", entry)
    vocabulary_file = entry.get("vocabulary_file")
    if vocabulary_file:
        path = Path(vocabulary_file)
        if not path.is_file():
            raise kplug.DataError(
                f"data.tokenizer.vocabulary_file {vocabulary_file!r} does not exist "
                f"(relative paths start at {Path.cwd()})."
            )
        tokenizer.load(path)
    else:
        tokenizer.train(texts)
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, entry: dict[str, Any], folder: Path) -> Path:
    """Write the tokenizer's vocabulary and metadata into `folder` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = tokenizer.save(folder)
    config = {k: v for k, v in entry.items() if k not in ("name", "vocabulary_file")}
    metadata = {"name": entry["name"], "config": config, "file": vocabulary.name}
    (folder / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return folder


def load_tokenizer(folder: str | Path, registry: Any = None) -> Tokenizer:
    """The tokenizer saved in `folder` (a run directory or its `tokenizer/` folder)."""
    folder = Path(folder)
    if (folder / FOLDER / METADATA).is_file():
        folder = folder / FOLDER
    metadata_path = folder / METADATA
    if not metadata_path.is_file():
        raise kplug.RunError(
            f"{folder} holds no saved tokenizer ({METADATA}); give the directory of a run "
            "whose data section has a tokenizer."
        )
    if registry is None:
        from kplug import loaded_registry

        registry = loaded_registry()
    metadata = _tokenizer_metadata(metadata_path, registry)
    component = registry.get("tokenizer", metadata["name"])
    try:
        config = component.config.model_validate(metadata["config"])
    except ValueError as error:
        raise _damaged(metadata_path, f"its config does not validate: {error}") from None
    tokenizer = component.factory(config, None)
    vocabulary = folder / metadata["file"]
    try:
        tokenizer.load(vocabulary)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise _damaged(vocabulary, f"{type(error).__name__}: {error}") from None
    return tokenizer


def _tokenizer_metadata(path: Path, registry: Any) -> dict[str, Any]:
    """`kplug_tokenizer.json`, checked: a registered name, a config, and a vocabulary file
    that is a plain file name inside the tokenizer folder (never a path out of the run)."""
    try:
        metadata = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as error:
        raise _damaged(path, f"{type(error).__name__}: {error}") from None
    if not isinstance(metadata, dict):
        raise _damaged(path, f"a JSON {type(metadata).__name__}, not an object")
    name, config, file = metadata.get("name"), metadata.get("config"), metadata.get("file")
    if not isinstance(name, str) or name not in registry.names("tokenizer"):
        raise _damaged(path, f"{name!r} is not a registered tokenizer")
    if not isinstance(config, dict):
        raise _damaged(path, "its `config` is not an object")
    if not isinstance(file, str) or not file or Path(file).name != file or file in (".", ".."):
        raise _damaged(
            path, f"its vocabulary file {file!r} is not a file name inside {path.parent}"
        )
    vocabulary = path.parent / file
    if not vocabulary.resolve().is_relative_to(path.parent.resolve()):
        raise _damaged(path, f"{vocabulary} leads outside {path.parent} (a link)")
    if not vocabulary.is_file():
        raise _damaged(path, f"its vocabulary file {vocabulary} is missing")
    return metadata


def _damaged(path: Path, problem: str) -> kplug.RunError:
    return kplug.RunError(
        f"{path}: the saved tokenizer is damaged ({problem}); restore the run's tokenizer/ "
        "folder, or train the run again."
    )


def saved_tokenizer_entry(run_dir: Path) -> dict[str, Any] | None:
    """`{"tokenizer": {folder, name, file}}` for a run directory's saved tokenizer (what
    inference.json records), or None when the run saved none."""
    metadata = Path(run_dir) / FOLDER / METADATA
    if not metadata.is_file():
        return None
    saved = json.loads(metadata.read_text("utf-8"))
    return {"tokenizer": {"folder": FOLDER, "name": saved["name"], "file": saved["file"]}}


def with_vocabulary_facts(estimate: Callable | None = None) -> Callable:
    """A text dataset's `estimate` (for `kplug plan`) that also gives the vocabulary size
    its trained tokenizer will have: the one `data.tokenizer.vocab_size` asks for, which
    makes the model's parameter count known before anything is trained."""

    def estimate_with_vocabulary(config: Any, facts: dict[str, Any]) -> dict[str, Any]:
        out = dict((estimate(config, facts) if estimate else None) or {})
        tokenizer = getattr(config, "tokenizer", None)
        size = tokenizer.get("vocab_size") if isinstance(tokenizer, dict) else None
        if size and "vocabulary_size" not in out:
            out["vocabulary_size"] = int(size)
            out["vocabulary_size_note"] = ("data.tokenizer.vocab_size (a trained WordPiece "
                                           "vocabulary may come out up to 5% smaller)")  # fmt: skip
        return out

    return estimate_with_vocabulary
