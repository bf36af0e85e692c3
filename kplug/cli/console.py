"""Clean terminal output of the `kplug` command: TensorFlow's C++ log lines kept off
stderr (progress bars only on a terminal: `kplug.training.trainer.progress_verbosity`).

TensorFlow 2.21 and XLA log through absl before `absl::InitializeLog()` is called, which
`TF_CPP_MIN_LOG_LEVEL` does not reach (`I0000 ... port.cc:153] oneDNN custom operations
are on`, `cudart_stub.cc`, `cuda_platform.cc`, ...). The `kplug` command therefore routes
its process's stderr file descriptor through a filter thread that drops those lines and
passes everything else on unchanged; `--debug` leaves stderr alone. Library users who
import kplug are not affected.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading

# `I0000 00:00:1796400718.528164   13044 port.cc:153] ...` and absl's preamble.
NATIVE_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ [\w.\-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    # the second line of cpu_feature_guard.cc's message
    rb"|To enable the following instructions: .* rebuild TensorFlow with)"
)


def filter_native_logs() -> None:
    """From now on, drop C++ log lines from this process's (and its children's) stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    terminal = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, terminal), daemon=True)
    pump.start()
    atexit.register(_stop, terminal, pump)


def _pump(read_end: int, terminal: int) -> None:
    pending = b""
    while chunk := os.read(read_end, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = [line + b"\n" for line in lines if not NATIVE_LINE.match(line)]
        if kept:
            os.write(terminal, b"".join(kept))
    if pending and not NATIVE_LINE.match(pending):
        os.write(terminal, pending)
    os.close(read_end)


def _stop(terminal: int, pump: threading.Thread) -> None:
    # Point fd 2 back at the terminal: the pipe's last writer in this process closes, so
    # the pump reads to the end and exits (children still running keep it open).
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os.dup2(terminal, 2)
    pump.join(timeout=5)
