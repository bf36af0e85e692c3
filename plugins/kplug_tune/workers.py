"""`kplug tune --workers N`: worker processes on this machine and a chief oracle on
127.0.0.1, talking KerasTuner's own chief/worker protocol (gRPC)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from kplug import RunError

LOOPBACK = "127.0.0.1"
# Seconds a worker gets to stop on its own (Ctrl-C reaches the whole process group), then
# after an interrupt from the chief, before it is killed.
GRACE_SECONDS = 3
STOP_SECONDS = 20


class LocalWorkers:
    """Worker processes, each running `kplug tune` with KerasTuner's worker variables.

    Args:
        count: how many workers (`tuner0`, `tuner1`, ...).
        arguments: the `kplug` arguments every worker runs (`tune RECIPE ... --directory D`).
        logs: the folder for each worker's output, `<tuner id>.log`.
    """

    def __init__(self, count: int, arguments: list[str], logs: Path):
        self.count = count
        self.arguments = arguments
        self.logs = logs
        self.port = _free_port()
        self.processes: dict[str, subprocess.Popen] = {}

    def environment(self, tuner_id: str) -> dict[str, str]:
        return {
            "KERASTUNER_TUNER_ID": tuner_id,
            "KERASTUNER_ORACLE_IP": LOOPBACK,
            "KERASTUNER_ORACLE_PORT": str(self.port),
        }

    @contextlib.contextmanager
    def chief(self) -> Iterator[None]:
        """This process as the chief while the block runs (KerasTuner reads os.environ)."""
        variables = self.environment("chief")
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for index in range(self.count):
            tuner_id = f"tuner{index}"
            with open(self.logs / f"{tuner_id}.log", "ab") as log:
                self.processes[tuner_id] = subprocess.Popen(
                    [sys.executable, "-m", "kplug", *self.arguments],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **self.environment(tuner_id)},
                )

    def finished(self) -> bool:
        """True once every worker has exited cleanly (the oracle told each to stop).

        Raises:
            RunError: a worker failed; its log's last lines say why.
        """
        codes = {tuner_id: p.poll() for tuner_id, p in self.processes.items()}
        for tuner_id, code in codes.items():
            if code not in (None, 0):
                raise RunError(
                    f"worker {tuner_id} exited with code {code}; the last lines of "
                    f"{self.logs / f'{tuner_id}.log'}:\n{self.tail(tuner_id)}"
                )
        return all(code == 0 for code in codes.values())

    def tail(self, tuner_id: str, lines: int = 15) -> str:
        text = (self.logs / f"{tuner_id}.log").read_text("utf-8", errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """Interrupt the workers still running (they leave their trials resumable), and kill
        any that does not stop in time."""
        self._wait(GRACE_SECONDS)
        for process in self._running():
            process.send_signal(signal.SIGINT)
        self._wait(STOP_SECONDS)
        for process in self._running():
            process.kill()
            process.wait()

    def _running(self) -> list[subprocess.Popen]:
        return [p for p in self.processes.values() if p.poll() is None]

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for process in self._running():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> LocalWorkers:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]
