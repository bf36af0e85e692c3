"""Step checkpoints of a run: files, checksums, rotation, selection and the preflight check.

A checkpoint is two files in `RUN_DIR/checkpoints/`: `step-<global step>.npz` (every
variable of the model, the optimizer and the metrics, and the NumPy random state) and
`step-<global step>.json` (its metadata: epoch, step, data position, history, random
state, the loss, and the npz's size and SHA-256). Each is written to a temporary name,
fsynced and renamed, the npz first, so a metadata file always names a complete npz. The
metadata has its own SHA-256 and a schema: a checkpoint whose npz or metadata does not
match its checksum, or whose metadata does not fit the schema, is skipped with a warning
naming the file.

No TensorFlow or Keras here: the Keras side is `kplug.training.step_checkpoint`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, NonNegativeInt, ValidationError

from kplug.errors import RunError
from kplug.rundir import RunDirectory, fsync_directory, utc_now, write_atomically

log = logging.getLogger("kplug")

FOLDER = "checkpoints"
FORMAT = 2  # 2: the metadata has its own checksum (`meta_sha256`); 1: it had none
_NAME = re.compile(r"^step-(\d+)\.json$")
# Space for the npz's zip headers and the metadata, beyond the arrays themselves.
OVERHEAD_BYTES = 1 << 20
# A checkpoint's loss more than this many times the run's lowest marks it diverged.
SANE_LOSS_FACTOR = 100.0


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
    def sane(self) -> bool:
        """Its loss was finite and not far above the run's lowest (see `is_sane_loss`)."""
        return bool(self.meta.get("sane", True))

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
    meta["meta_sha256"] = _meta_checksum(meta)
    write_atomically(folder / f"{stem}.npz", data)
    text = json.dumps(meta, indent=1, allow_nan=True) + "\n"
    target = write_atomically(folder / f"{stem}.json", text.encode("utf-8"))
    fsync_directory(folder)
    rotate(folder, keep)
    return target


def storage_error(error: OSError, directory: RunDirectory) -> RunError:
    """A one-paragraph error for a full or unwritable disk during a run, naming the newest
    intact checkpoint and the way on."""
    where = f" ({error.filename})" if error.filename else ""
    try:
        newest = newest_valid(directory.path)
    except OSError:
        newest = None
    kept = (
        f"The newest checkpoint is intact: {newest.path} (step {newest.global_step}); free "
        f"some space (or fix the permissions) and continue with `kplug resume {directory}`."
        if newest is not None
        else "No checkpoint was written; free some space (or fix the permissions) and run "
        "again, or choose another place with --runs-dir or KPLUG_RUNS_DIR."
    )
    return RunError(
        f"cannot write to the run directory {directory}: {error.strerror or error}{where}. {kept}"
    )


def newest_valid(run_directory: str | os.PathLike) -> Checkpoint | None:
    """The newest checkpoint whose npz matches its checksum; a warning for each newer one
    that does not (truncated, corrupted, missing)."""
    for meta_path in _metadata_files(folder_of(run_directory)):
        checkpoint, problem = verify(meta_path)
        if checkpoint is not None:
            return checkpoint
        log.warning("checkpoint %s is unusable (%s); trying the previous one", meta_path, problem)
    return None


def newest_sane(run_directory: str | os.PathLike) -> Checkpoint | None:
    """The newest valid checkpoint whose loss was sane (`is_sane_loss`)."""
    for meta_path in _metadata_files(folder_of(run_directory)):
        checkpoint, _ = verify(meta_path)
        if checkpoint is not None and checkpoint.sane:
            return checkpoint
    return None


class CheckpointMeta(BaseModel):
    """The schema of a checkpoint's metadata (extra keys are allowed, for later formats)."""

    model_config = ConfigDict(extra="allow", strict=True)

    format: int
    file: str
    bytes: NonNegativeInt
    sha256: str
    epoch: NonNegativeInt
    step_in_epoch: NonNegativeInt
    global_step: NonNegativeInt
    steps_per_epoch: NonNegativeInt | None = None
    history: dict[str, list[float | int | str | None]] = {}
    variables: dict[str, list[str]]
    rng: dict[str, list[Any]]
    loss: float | int | None = None
    sane: bool = True


def verify(meta_path: Path) -> tuple[Checkpoint | None, str]:
    """Read and check one checkpoint: `(checkpoint, "")` or `(None, what is wrong)`."""
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        return None, f"unreadable metadata: {type(error).__name__}: {error}"
    problem = _metadata_problem(meta)
    if problem:
        return None, problem
    if Path(meta["file"]).name != meta["file"] or not meta["file"].endswith(".npz"):
        return None, f"its metadata names {meta['file']!r}, not an npz beside it"
    npz = meta_path.with_name(meta["file"])
    try:
        data = npz.read_bytes()
    except OSError as error:
        return None, f"{npz.name}: {error.strerror or error}"
    if len(data) != meta["bytes"]:
        return None, f"{npz} has {len(data)} bytes, its metadata says {meta['bytes']} (truncated?)"
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        return None, f"{npz} does not match its SHA-256 checksum (corrupted)"
    return Checkpoint(npz, meta, data), ""


def _metadata_problem(meta: Any) -> str:
    """What is wrong with a checkpoint's metadata (checksum, then schema), or ""."""
    if not isinstance(meta, dict):
        return f"its metadata is a {type(meta).__name__}, not an object"
    if meta.get("format", 1) >= 2 and meta.get("meta_sha256") != _meta_checksum(meta):
        return "its metadata does not match its SHA-256 checksum (edited or corrupted)"
    try:
        CheckpointMeta.model_validate(meta)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        return f"invalid metadata: {where}: {first['msg']}"
    numpy_state = meta["rng"].get("numpy")
    if not (isinstance(numpy_state, list) and len(numpy_state) == 4 and "python" in meta["rng"]):
        return "invalid metadata: rng: not a saved random state"
    if meta.get("format", 1) < 2:
        log.warning("checkpoint metadata of format 1 has no checksum of its own: %s",
                    meta.get("file"))  # fmt: skip
    return ""


def _meta_checksum(meta: dict[str, Any]) -> str:
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rotate(folder: Path, keep: int) -> None:
    """Keep the newest `keep` checkpoints and the newest sane one before the one just
    written (whose sanity the loss after it decides; after a divergence the newest ones
    may be finite but far off: 1e34); remove older ones and leftover temporaries."""
    files = _metadata_files(folder)
    kept = set(files[:keep])
    for meta_path in files[1:]:
        if _is_sane(meta_path):
            kept.add(meta_path)
            break
    for meta_path in files:
        if meta_path in kept:
            continue
        for path in (meta_path.with_suffix(".npz"), meta_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    for leftover in folder.glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _is_sane(meta_path: Path) -> bool:
    try:
        return bool(json.loads(meta_path.read_text("utf-8")).get("sane", True))
    except (OSError, ValueError, AttributeError):
        return False


def mark_not_sane(meta_path: Path) -> None:
    """Record that the loss right after this checkpoint diverged: its weights led there
    (a step's loss measures the weights before the step's update)."""
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(meta, dict) or not meta.get("sane", True):
        return
    meta["sane"] = False
    meta["meta_sha256"] = _meta_checksum(meta)
    write_atomically(meta_path, (json.dumps(meta, indent=1, allow_nan=True) + "\n").encode())


def is_sane_loss(loss: float | None, lowest: float | None) -> bool:
    """A loss is sane when it is finite and at most `SANE_LOSS_FACTOR` times the run's
    lowest so far (plus that much again in absolute terms, for losses near or below 0)."""
    if loss is None:
        return True
    if not math.isfinite(loss):
        return False
    if lowest is None:
        return True
    return loss <= lowest + SANE_LOSS_FACTOR * max(abs(lowest), 1.0)


def checkpoint_steps(run_directory: str | os.PathLike) -> list[int]:
    """The global steps that have a checkpoint metadata file, newest first."""
    return [int(_NAME.match(p.name).group(1)) for p in _metadata_files(folder_of(run_directory))]


def set_aside_newer_checkpoints(run_directory: str | os.PathLike, step: int) -> Path | None:
    """Move the checkpoints after global step `step` into `checkpoints/after-<step>-<time>/`
    (resuming from an older step abandons them; nothing is deleted)."""
    folder = folder_of(run_directory)
    newer = [p for p in _metadata_files(folder) if int(_NAME.match(p.name).group(1)) > step]
    if not newer:
        return None
    target = folder / f"after-{step}-{utc_now().replace(':', '')}"
    target.mkdir()
    for meta_path in newer:
        for path in (meta_path.with_suffix(".npz"), meta_path):
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, target / path.name)
    log.info("checkpoints after step %d moved to %s", step, target)
    return target


def checkpoint_bytes(parameters: int, optimizer_slots: int) -> int:
    """Estimated size of one checkpoint: float32 weights and optimizer slots."""
    return int(parameters) * 4 * (1 + int(optimizer_slots)) + OVERHEAD_BYTES


def preflight(
    run_directory: str | os.PathLike,
    *,
    parameters: int | None,
    optimizer_slots: int,
    checkpoints: int = 4,
    models: int = 1,
) -> None:
    """Fail before training when the run directory is not writable or lacks the space for
    `checkpoints` checkpoints and `models` saved models (model.keras, exports) of a model
    with `parameters` weights (None: writability only).

    A run with `keep_checkpoints: k` needs k + 2: a new checkpoint is written before the
    oldest is removed, and the last sane one is kept after a divergence."""
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
    one = checkpoint_bytes(parameters, optimizer_slots)
    need = (checkpoints + models) * one
    free = shutil.disk_usage(path).free
    if free < need:
        raise RunError(
            f"not enough disk space for this run: {checkpoints} checkpoints (keep_checkpoints, "
            f"the one written before the oldest is removed, the last sane one) and {models} "
            f"saved model(s) (model.keras, exports) of {parameters:,} parameters "
            f"({optimizer_slots} optimizer slot(s) each, float32) need about {_mib(need)}, "
            f"and {path} has {_mib(free)} free. Free some space, choose another place with "
            "--runs-dir or KPLUG_RUNS_DIR, or set train.keep_checkpoints=0 (no checkpoints: "
            "the run cannot be resumed)."
        )


def _metadata_files(folder: Path) -> list[Path]:
    """Metadata files, newest (highest global step) first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def _mib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"
