"""`kplug run` in a child process for the benchmarks that compare whole runs (qa.py,
finetune_vader.py, knn_lm.py): the run directory and its metrics.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kplug_run(recipe: str, runs_dir: Path, overrides: list[str]) -> tuple[Path, dict]:
    """Run `recipe` with `overrides` under `runs_dir`; exit naming it if the run fails."""
    command = [sys.executable, "-m", "kplug", "run", recipe, "--runs-dir", str(runs_dir),
               *overrides]  # fmt: skip
    print("$ kplug run", recipe, *overrides, file=sys.stderr, flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{recipe} failed:\n{result.stderr[-3000:]}")
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    run_dir = run_dir if run_dir.is_absolute() else ROOT / run_dir
    return run_dir, json.loads((run_dir / "metrics.json").read_text())
