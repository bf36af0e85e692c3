"""Run directories: `runs/<name>/<UTC timestamp>/`, created once, written atomically."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from kplug.errors import RunError

MANIFEST = "manifest.json"
# Held (flock) by the process that trains into a run directory; it holds that pid.
LOCK = ".lock"

log = logging.getLogger("kplug")


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
        self._lock_fd: int | None = None

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

    def lock(self) -> None:
        """Take the run directory for this process until `unlock` (or its exit): an
        exclusive `flock` on `RUN_DIR/.lock`, which holds this process id.

        Raises:
            RunError: another process holds it (named by its pid).
        """
        if self._lock_fd is not None:
            return
        import fcntl

        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                log.warning("cannot lock %s (%s); go on without a lock", self.path, error)
                return
            raise RunError(
                f"{self.path} is in use by another kplug process (pid {holder}): two processes "
                "must not train into one run directory. Wait for it to finish, or stop it "
                f"(kill -TERM {holder} saves a checkpoint), then `kplug resume {self.path}`."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

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
        """The run's manifest ({} before it is written); a damaged one is a RunError."""
        path = self.path / MANIFEST
        try:
            manifest = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise RunError(
                f"{path} is damaged ({type(error).__name__}: {error}); it is the run's record "
                "(status, command, versions): restore it from a backup, or start a new run."
            ) from None
        if not isinstance(manifest, dict):
            raise RunError(f"{path} is damaged: a JSON {type(manifest).__name__}, not an object.")
        return manifest

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        manifest = self.manifest()
        manifest.update(fields)
        self.write_json(MANIFEST, manifest)
        return manifest

    def record_in_manifest(self, **fields: Any) -> None:
        """`update_manifest` for the end of a run, which must not hide the error that ended
        it: on a full disk the manifest is rewritten in place (truncating it frees the
        blocks the new text needs); if even that fails, a warning says so."""
        try:
            self.update_manifest(**fields)
            return
        except OSError as error:
            if not is_storage_error(error, self):
                raise
            problem = error
        try:
            manifest = {**self.manifest(), **fields}
            data = json.dumps(manifest, indent=2, default=_json_default).encode("utf-8")
            with open(self.path / MANIFEST, "r+b") as handle:
                handle.truncate(0)
                handle.write(data + b"\n")
        except (OSError, ValueError) as error:
            log.warning("cannot record %s in %s: %s (after %s)", sorted(fields),
                        self.path / MANIFEST, error, problem)  # fmt: skip

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
    from kplug.recipe import yamlio

    path = Path(run_dir) / "recipe.resolved.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir} has no recipe.resolved.yaml; is it a kplug run?")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        raise RunError(f"{path} is unreadable ({error}); is it a kplug run?") from None
    recipe, _ = yamlio.parse(text, str(path))
    objective = recipe.get("objective") if isinstance(recipe, dict) else None
    if not isinstance(objective, dict):
        raise RunError(f"{path} is damaged: it has no `objective:` section.")
    if objective.get("name") != name:
        raise RunError(f"{run_dir} is a {objective.get('name')!r} run; {purpose}.")
    return objective


def write_atomically(target: Path, data: bytes) -> Path:
    """Write `target` through a temporary name in its folder, fsync, rename: a reader (or a
    crash) sees the old file or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; files follow the umask
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


# Errors of a disk that is full or cannot be written (by errno); EACCES, EPERM and EROFS
# count only for files in the run directory.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def is_storage_error(error: OSError, directory: RunDirectory | None = None) -> bool:
    """Whether `error` means the run directory's disk is full or cannot be written."""
    if error.errno in _FULL:
        return True
    inside = directory is not None and str(error.filename or "").startswith(str(directory.path))
    return error.errno in _UNWRITABLE and inside


def current_umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # NumPy arrays and scalars, tensors
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def latest_completed_run(parent: Path) -> Path | None:
    """The newest `parent/<timestamp>/` whose manifest says completed and has a model."""
    runs = []
    for child in parent.iterdir():
        manifest = child / "manifest.json"
        if not (manifest.is_file() and (child / "model.keras").is_file()):
            continue
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(manifest.read_text("utf-8"))
            if data.get("status") == "completed":
                runs.append((data.get("finished", ""), child.name, child))
    return max(runs)[2] if runs else None


def fsync_directory(folder: Path) -> None:
    """Make renames in `folder` durable (a crash right after could otherwise lose them);
    a file system that cannot sync a folder is left as it is."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
