"""Step checkpoints of a run: files, checksums, rotation, selection and the preflight check.

A checkpoint is two files in `RUN_DIR/checkpoints/`: `step-<global step>.npz` (every
variable of the model, the optimizer and the metrics, and the NumPy random state) and
`step-<global step>.json` (its metadata: epoch, step, data position, history, random
state, and the npz's size and SHA-256). Each is written to a temporary name, fsynced and
renamed, the npz first, so a metadata file always names a complete npz; a checkpoint
whose npz does not match its checksum is skipped with a warning naming the file.

No TensorFlow or Keras here: the Keras side is `kplug.training.step_checkpoint`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kplug.errors import RunError
from kplug.rundir import write_atomically

log = logging.getLogger("kplug")

FOLDER = "checkpoints"
FORMAT = 1
_NAME = re.compile(r"^step-(\d+)\.json$")
# Space for the npz's zip headers and the metadata, beyond the arrays themselves.
OVERHEAD_BYTES = 1 << 20


@dataclass
class Checkpoint:
    """One verified checkpoint: its npz path and its metadata.

    Attributes:
        epoch: the epoch the next training batch belongs to (0-based).
        step_in_epoch: batches of that epoch already trained.
        global_step: batches trained since the start of the run (the data position).
        steps_per_epoch: batches per epoch of the run that wrote it.
        history: the per-epoch logs of the epochs completed so far.
    """

    path: Path
    meta: dict[str, Any]
    data: bytes = b""

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])

    @property
    def step_in_epoch(self) -> int:
        return int(self.meta["step_in_epoch"])

    @property
    def global_step(self) -> int:
        return int(self.meta["global_step"])

    @property
    def steps_per_epoch(self) -> int | None:
        return self.meta.get("steps_per_epoch")

    @property
    def history(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.meta.get("history", {}).items()}

    def arrays(self) -> dict[str, Any]:
        """The saved arrays by name (`model/0000`, `optimizer/0003`, ...)."""
        import numpy as np

        with np.load(io.BytesIO(self.data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}


def folder_of(run_directory: str | os.PathLike) -> Path:
    return Path(run_directory) / FOLDER


def write_checkpoint(
    run_directory: str | os.PathLike,
    arrays: dict[str, Any],
    meta: dict[str, Any],
    *,
    keep: int,
) -> Path:
    """Write one checkpoint atomically, then delete all but the newest `keep`.

    Args:
        arrays: NumPy arrays by name.
        meta: JSON-serializable metadata; must hold `global_step`.
    Returns the metadata file's path.
    """
    import numpy as np

    folder = folder_of(run_directory)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    stem = f"step-{int(meta['global_step']):09d}"
    meta = {**meta, "format": FORMAT, "file": f"{stem}.npz", "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
    write_atomically(folder / f"{stem}.npz", data)
    text = json.dumps(meta, indent=1, allow_nan=True) + "\n"
    target = write_atomically(folder / f"{stem}.json", text.encode("utf-8"))
    _fsync_directory(folder)
    rotate(folder, keep)
    return target


def newest_valid(run_directory: str | os.PathLike) -> Checkpoint | None:
    """The newest checkpoint whose npz matches its checksum; a warning for each newer one
    that does not (truncated, corrupted, missing)."""
    for meta_path in _metadata_files(folder_of(run_directory)):
        checkpoint, problem = verify(meta_path)
        if checkpoint is not None:
            return checkpoint
        log.warning("checkpoint %s is unusable (%s); trying the previous one", meta_path, problem)
    return None


def verify(meta_path: Path) -> tuple[Checkpoint | None, str]:
    """Read and check one checkpoint: `(checkpoint, "")` or `(None, what is wrong)`."""
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        npz = meta_path.with_name(meta["file"])
        expected, size = meta["sha256"], int(meta["bytes"])
        int(meta["global_step"]), int(meta["epoch"]), int(meta["step_in_epoch"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, f"unreadable metadata: {type(error).__name__}: {error}"
    try:
        data = npz.read_bytes()
    except OSError as error:
        return None, f"{npz.name}: {error.strerror or error}"
    if len(data) != size:
        return None, f"{npz} has {len(data)} bytes, its metadata says {size} (truncated?)"
    if hashlib.sha256(data).hexdigest() != expected:
        return None, f"{npz} does not match its SHA-256 checksum (corrupted)"
    return Checkpoint(npz, meta, data), ""


def rotate(folder: Path, keep: int) -> None:
    """Keep the newest `keep` checkpoints; remove older ones and leftover temporaries."""
    for meta_path in _metadata_files(folder)[keep:]:
        for path in (meta_path.with_suffix(".npz"), meta_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    for leftover in folder.glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def checkpoint_bytes(parameters: int, optimizer_slots: int) -> int:
    """Estimated size of one checkpoint: float32 weights and optimizer slots."""
    return int(parameters) * 4 * (1 + int(optimizer_slots)) + OVERHEAD_BYTES


def preflight(
    run_directory: str | os.PathLike, *, parameters: int | None, optimizer_slots: int
) -> None:
    """Fail before training when the run directory is not writable or lacks the space
    for two checkpoints of a model with `parameters` weights (None: writability only)."""
    path = Path(run_directory)
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".preflight-", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise RunError(
            f"the run directory {path} is not writable ({error.strerror or error}); "
            "choose another place with --runs-dir or KPLUG_RUNS_DIR, or fix its permissions."
        ) from None
    if not parameters:
        return
    need = 2 * checkpoint_bytes(parameters, optimizer_slots)
    free = shutil.disk_usage(path).free
    if free < need:
        raise RunError(
            f"not enough disk space for the checkpoints of this run: two checkpoints of "
            f"{parameters:,} parameters ({optimizer_slots} optimizer slot(s) each, float32) "
            f"need about {_mib(need)}, and {path} has {_mib(free)} free. Free some space, "
            "choose another place with --runs-dir or KPLUG_RUNS_DIR, or set "
            "train.keep_checkpoints=0 (no checkpoints: the run cannot be resumed)."
        )


def _metadata_files(folder: Path) -> list[Path]:
    """Metadata files, newest (highest global step) first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def _fsync_directory(folder: Path) -> None:
    """Make the renames durable (a crash right after could otherwise lose them)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _mib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"
