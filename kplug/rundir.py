"""Run directories: `runs/<name>/<UTC timestamp>/`, created once, written atomically."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kplug.errors import RunError

MANIFEST = "manifest.json"


def default_runs_root() -> Path:
    """Where runs go: `$KPLUG_RUNS_DIR`, else `runs/` in the working directory."""
    return Path(os.environ.get("KPLUG_RUNS_DIR", "runs"))


def utc_now() -> str:
    """The current UTC time as an ISO 8601 string to the second, e.g. `2026-12-04T16:05:00Z`."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class RunDirectory:
    """One run's directory. Never reuses an existing directory.

    Args:
        path: the directory, which must exist.

    Example:
    ```python
    run_dir = RunDirectory.create("runs", "mnist-cnn")
    run_dir.write_json("metrics.json", {"test": {"accuracy": 0.97}})
    ```
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def create(cls, root: str | os.PathLike, name: str) -> RunDirectory:
        """Make `root/name/<timestamp>`; a second run in the same second gets `-1`, `-2`.

        `name` must be one plain folder name: recipes check theirs, and this check keeps
        any other caller (a plugin, the Python API) from writing outside `root`.
        """
        if not name or "\x00" in name or Path(name).name != name or name in (".", ".."):
            raise RunError(
                f"{name!r} cannot name a run directory: give one folder name without "
                "'/' or '..', e.g. mnist-cnn."
            )
        parent = Path(root) / name
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(
                f"cannot create the run directory under {parent}: {error.strerror}. "
                "Choose another place with --runs-dir or KPLUG_RUNS_DIR."
            ) from None
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for attempt in range(1000):
            path = parent / (stamp if attempt == 0 else f"{stamp}-{attempt}")
            try:
                path.mkdir()  # exclusive: an existing run is never reused
            except FileExistsError:
                continue
            except OSError as error:
                raise RunError(f"cannot create {path}: {error.strerror}") from None
            return cls(path)
        raise RunError(f"too many runs named {name!r} in the same second under {parent}")

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDirectory:
        """An existing run directory (for resume, generate, sample)."""
        p = Path(path)
        if not (p / MANIFEST).is_file():
            raise RunError(
                f"{p} is not a kplug run directory (no {MANIFEST}); give the directory "
                "that `kplug run` printed."
            )
        return cls(p)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write a file atomically: a temporary name in the same folder, fsync, rename."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_atomically(target, data)

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, default=_json_default) + "\n")

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text("utf-8"))

    def manifest(self) -> dict[str, Any]:
        try:
            return self.read_json(MANIFEST)
        except FileNotFoundError:
            return {}

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        manifest = self.manifest()
        manifest.update(fields)
        self.write_json(MANIFEST, manifest)
        return manifest

    def temporary_path(self, name: str) -> Path:
        """A fresh path beside `name`, for libraries that write files themselves; rename
        it onto `name` with `commit`."""
        target = self.path / name
        return target.with_name(f".{target.stem}-{os.getpid()}.tmp{target.suffix}")

    def commit(self, temporary: Path, name: str) -> Path:
        target = self.path / name
        os.replace(temporary, target)
        return target


def run_objective(run_dir: Path, name: str, purpose: str) -> dict[str, Any]:
    """The `objective:` section of a run's resolved recipe, checked to be `name`.

    Args:
        purpose: what the caller does with such runs, for the error (e.g. "kplug sample
            draws from GANs trained with objective adversarial").
    """
    from kplug import yamlio

    path = Path(run_dir) / "recipe.resolved.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir} has no recipe.resolved.yaml; is it a kplug run?")
    recipe, _ = yamlio.parse(path.read_text(encoding="utf-8"), str(path))
    objective = recipe.get("objective") or {}
    if objective.get("name") != name:
        raise RunError(f"{run_dir} is a {objective.get('name')!r} run; {purpose}.")
    return objective


def write_atomically(target: Path, data: bytes) -> Path:
    """Write `target` through a temporary name in its folder, fsync, rename: a reader (or a
    crash) sees the old file or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # NumPy arrays and scalars, tensors
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
