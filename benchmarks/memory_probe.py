"""Shared by benchmarks/long_attention.py and benchmarks/reversible.py: run one
configuration in its own process and read its peak RSS, so figures are independent.

The parent starts a fresh intermediate Python per configuration, which runs the child
command and prints `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`: the peak RSS of that
one child (its whole process tree), never the maximum over earlier configurations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

MEASURE = (
    "import json, resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'rc': done.returncode, 'stdout': done.stdout,\n"
    "                  'stderr': done.stderr[-3000:], 'peak_kib': peak_kib}))\n"
)


def run_measured(child: list[str], env: dict | None = None, timeout: float = 1800) -> dict:
    """Run `child` (a command) in its own process tree; its last stdout line is a JSON
    object, returned with `peak_rss_mib` added. Raises with the child's stderr on failure."""
    command = [sys.executable, "-c", MEASURE, *child]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})  # fmt: skip
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    if outcome["rc"] != 0:
        raise RuntimeError(f"{' '.join(child)} failed:\n{outcome['stderr']}")
    result = json.loads(outcome["stdout"].strip().splitlines()[-1])
    result["peak_rss_mib"] = outcome["peak_kib"] / 1024
    return result


def current_rss_mib() -> float:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def available_mib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def reset_peak_rss() -> float:
    """Start a new peak-RSS window for this process (Linux `clear_refs` 5 resets `VmHWM` to
    the current RSS) and return the RSS now, in MiB: `peak_rss_since_reset_mib()` is then
    the peak of what runs after this call alone, not of compiling or building before it."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return current_rss_mib()


def peak_rss_since_reset_mib() -> float:
    """This process's peak RSS (`VmHWM`) since the last `reset_peak_rss()`, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
