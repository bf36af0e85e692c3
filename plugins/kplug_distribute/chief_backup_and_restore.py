"""`ChiefBackupAndRestore`: Keras' `BackupAndRestore` for several workers sharing one backup."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import keras

POINTER = "LATEST"


class ChiefBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs up the training state at each epoch end; a restarted run resumes from it.

    Every worker restores from the same backup, so all of them resume at the same epoch
    with the same weights; only the chief writes it. Each backup goes to a new folder and
    the `LATEST` pointer is replaced atomically afterwards, so a worker killed while
    writing leaves the previous backup intact.

    Args:
        backup_dir: a folder every worker can read (shared storage on a real cluster).
        is_chief: whether this worker writes the backups.
        save_freq: `"epoch"` or a number of batches.
    """

    def __init__(self, backup_dir: str, is_chief: bool, save_freq: str | int = "epoch", **kwargs):
        super().__init__(backup_dir, save_freq=save_freq, **kwargs)
        self.is_chief = is_chief

    def _load_model(self):
        pointer = os.path.join(self.backup_dir, POINTER)
        if not os.path.exists(pointer):
            return
        with open(pointer, encoding="utf-8") as handle:
            state = os.path.join(self.backup_dir, handle.read().strip())
        self._weights_path = os.path.join(state, "latest.weights.h5")
        self._training_metadata_path = os.path.join(state, "training_metadata.json")
        super()._load_model()

    def _save_model(self):
        if not self.is_chief:
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        state = tempfile.mkdtemp(dir=self.backup_dir, prefix="state-")
        self.model.save_weights(os.path.join(state, "latest.weights.h5"))
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        with open(os.path.join(state, "training_metadata.json"), "w", encoding="utf-8") as f:
            json.dump(metadata, f)
        _write_atomically(os.path.join(self.backup_dir, POINTER), os.path.basename(state))
        for name in os.listdir(self.backup_dir):
            if name.startswith("state-") and name != os.path.basename(state):
                shutil.rmtree(os.path.join(self.backup_dir, name), ignore_errors=True)

    def on_train_end(self, logs=None):
        if self.is_chief:
            super().on_train_end(logs)


def _write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
