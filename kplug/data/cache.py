"""The prepared-data cache: datasets prepared once, keyed by content, reused by every run.

A dataset plugin that prepares its data (token shards, ...) keys the result by a hash of
what determines it (its resolved config, the identity of its source files, a format
version) and keeps it in `cache_root()/<key>/`. A preparation is written into a
temporary sibling folder and renamed into place after its completion marker, so a folder
named by a key is always complete: a preparation killed half-way leaves only a temporary
folder, which nothing reads and the next preparation of any key removes.

`KPLUG_DATA_CACHE` sets the root; the default is `$XDG_CACHE_HOME/kplug/data` (or
`~/.cache/kplug/data`). `kplug data --list` / `--clear` show and empty it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kplug.errors import DataError
from kplug.rundir import fsync_directory

COMPLETE = "COMPLETE"  # the marker written last: its presence means the folder is whole
TEMPORARY = ".preparing-"
LOCK = ".lock-"  # `.lock-<key>`: held while a process prepares (or checks) that key

log = logging.getLogger("kplug")


def cache_root() -> Path:
    """The cache folder (not created)."""
    configured = os.environ.get("KPLUG_DATA_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kplug" / "data"


def content_key(parts: dict[str, Any]) -> str:
    """A short, stable hash of JSON-able `parts` (sorted keys)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def file_identity(path: Path) -> dict[str, Any]:
    """What says a source file is unchanged: its resolved path, size and mtime (ns)."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def find_prepared(key: str) -> Path | None:
    """The complete prepared folder of `key`, or None."""
    folder = cache_root() / key
    return folder if (folder / COMPLETE).is_file() else None


@contextlib.contextmanager
def preparing(key: str) -> Iterator[Path | None]:
    """A fresh temporary folder to prepare `key` into; on success it is renamed to
    `cache_root()/key` (after `mark_complete`), on any error removed. Holds the key's lock
    throughout; yields None when another process completed `key` while this one waited
    for the lock (`find_prepared(key)` has it: nothing to prepare).

    Raises:
        DataError: when the cache folder cannot be created or written.
    """
    root = _writable_root()
    with _locked(root / f"{LOCK}{key}", key):
        if find_prepared(key) is not None:
            yield None
            return
        _remove_abandoned(root)
        temporary = root / f"{TEMPORARY}{key}-{os.getpid()}-{time.monotonic_ns()}"
        temporary.mkdir()
        try:
            yield temporary
            if not (temporary / COMPLETE).is_file():
                raise RuntimeError(f"{temporary}: finished without mark_complete()")
            if (root / key).exists():  # a file system where flock does not hold (NFS)
                shutil.rmtree(temporary)
                return
            os.rename(temporary, root / key)
            fsync_directory(root)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise


@contextlib.contextmanager
def _locked(path: Path, key: str) -> Iterator[None]:
    """An exclusive `flock` on `path`, waiting (and saying so) while another process holds
    it. The lock file stays: removing it would let a third process lock a new file while
    the second still waits on the old one."""
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("data: another process is preparing %s; waiting for it to finish", key)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mark_complete(folder: Path, summary: dict[str, Any]) -> None:
    """Write the completion marker (with a summary for `--list`) last, durably."""
    path = folder / COMPLETE
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    fsync_directory(folder)


def write_durably(path: Path, data: bytes) -> None:
    """Write a small file and fsync it (shard indexes)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def list_prepared() -> list[dict[str, Any]]:
    """One row per folder of the cache: key, state, size and the summary."""
    root = cache_root()
    if not root.is_dir():
        return []
    rows = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            continue
        marker = folder / COMPLETE
        summary = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
        rows.append({
            "key": folder.name,
            "state": "complete" if marker.is_file() else "incomplete",
            "megabytes": round(_size(folder) / 1e6, 1),
            **summary,
        })  # fmt: skip
    return rows


def clear_cache() -> int:
    """Remove every prepared dataset; returns how many folders were removed."""
    root = cache_root()
    if not root.is_dir():
        return 0
    folders = [f for f in root.iterdir() if f.is_dir()]
    for folder in folders:
        shutil.rmtree(folder)
    for lock in root.glob(f"{LOCK}*"):
        lock.unlink(missing_ok=True)
    return len(folders)


def _writable_root() -> Path:
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise DataError(
            f"the data cache folder {root} is not writable ({error.strerror or error}); set "
            "KPLUG_DATA_CACHE to a folder you can write, e.g. KPLUG_DATA_CACHE=/tmp/kplug-data."
        ) from None
    return root


def _remove_abandoned(root: Path) -> None:
    """Temporary folders of preparations whose process is gone (killed half-way)."""
    for folder in root.glob(f"{TEMPORARY}*"):
        try:
            pid = int(folder.name[len(TEMPORARY) :].split("-")[-2])
        except (IndexError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
