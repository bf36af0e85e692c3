"""`MultiWorkerStrategy`: synchronous training over several processes or machines."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from kplug import RunDirectory
from kplug_distribute.cluster import Cluster
from kplug_distribute.fit_strategy import LoopStrategy

# Set by `kplug launch` for the chief: the run directory a restarted chief continues.
RUN_DIRECTORY_ENV = "KPLUG_RUN_DIRECTORY"
# Set by `kplug launch --restart-failed`: where the workers' shared backup lives.
BACKUP_DIR_ENV = "KPLUG_BACKUP_DIR"


class MultiWorkerStrategy(LoopStrategy):
    """`MultiWorkerMirroredStrategy` in kplug's distributed loop.

    Only the chief keeps a run directory; the other workers write into a temporary one
    that is removed when the run ends (`remove_worker_directory`).

    Args:
        tf_strategy: the `tf.distribute.MultiWorkerMirroredStrategy`.
        cluster: the checked cluster, or None for a single local worker.
        backup_dir: where the chief backs up the training state each epoch, so that a
            restarted cluster resumes; None: no backups.
    """

    def __init__(self, tf_strategy: Any, cluster: Cluster | None, backup_dir: str | None):
        super().__init__("multi_worker", tf_strategy)
        self.cluster = cluster
        self.is_chief = cluster is None or cluster.is_chief
        self.backup_dir = backup_dir
        self.temporary_directory: Path | None = None

    def run_directory(self, runs_root: str | os.PathLike, name: str) -> RunDirectory:
        worker = self.cluster.task.replace(" ", "") if self.cluster else "chief"
        return process_run_directory(self, runs_root, name, worker)

    def extra_callbacks(self, model) -> list[Any]:
        if not self.backup_dir:
            return []
        from kplug_distribute.chief_backup_and_restore import ChiefBackupAndRestore

        return [ChiefBackupAndRestore(self.backup_dir, is_chief=self.is_chief)]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.cluster is not None:
            out.update(
                workers=self.cluster.num_workers,
                task=self.cluster.task,
                cluster=self.cluster.spec,
                chief=self.is_chief,
            )
        if self.backup_dir:
            out["backup_dir"] = self.backup_dir
        return out


def backup_dir_from(configured: str | None) -> str | None:
    return configured or os.environ.get(BACKUP_DIR_ENV) or None


def process_run_directory(
    strategy: Any, runs_root: str | os.PathLike, name: str, worker: str
) -> RunDirectory:
    """Where one process of a run over several writes: the chief into the run directory
    (`KPLUG_RUN_DIRECTORY` when `kplug launch` made it, so a restarted chief continues it;
    else a new one), every other process into a temporary directory, kept in
    `strategy.temporary_directory` and removed when the run ends (`run_finished`)."""
    if not strategy.is_chief:
        strategy.temporary_directory = Path(tempfile.mkdtemp(prefix=f"kplug-{name}-{worker}-"))
        return RunDirectory(strategy.temporary_directory)
    given = os.environ.get(RUN_DIRECTORY_ENV)
    return RunDirectory(given) if given else RunDirectory.create(runs_root, name)
