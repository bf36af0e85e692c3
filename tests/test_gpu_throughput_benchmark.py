"""benchmarks/gpu_throughput.py runs end to end with tiny shapes on the CPU (`--tiny`), both
through `kplug run` and through plain keras-hub, so the GPU benchmark cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.xdist_group("benchmark")


def test_gpu_throughput_tiny_measures_kplug_and_keras_hub(tmp_path):
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_throughput.py"), "--tiny", "--steps",
         "2", "--epochs", "2", "--plan", "2:off:kplug+keras_hub", "--json", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [row["framework"] for row in rows] == ["kplug", "keras_hub"]
    for row in rows:
        assert row["tokens_per_second"] > 0 and row["step_ms"] > 0 and row["mfu"] >= 0
        assert len(row["epoch_seconds"]) == 2 and row["compile_seconds"] is not None
        # No step waits for the host to read its logs, in kplug as in plain Keras.
        assert row["logs_read_on_training_thread"] == 0
    # The same network: the same parameter count in both.
    assert rows[0]["parameters"] == rows[1]["parameters"]
    assert "kplug / keras_hub at batch 2, flash False:" in done.stdout
