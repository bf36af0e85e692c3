"""`kplug launch --workers N RECIPE [OVERRIDES]`: a multi-worker run on this machine.

Each worker is a `kplug run` child process with its own `TF_CONFIG` on free 127.0.0.1
ports (`multi_worker`), or Keras' `KERAS_DISTRIBUTION_*` variables naming worker 0 as the
coordinator (`jax_data_parallel`: one JAX process per worker); their output is streamed
with a `[worker i]` prefix. If one fails, the others
are stopped. With `--restart-failed` the whole cluster is restarted instead (a
synchronous cluster cannot go on without the lost worker) and resumes from the chief's
per-epoch backup. The chief's run directory is printed last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import kplug
from kplug_distribute import jax_processes
from kplug_distribute.multi_worker_strategy import BACKUP_DIR_ENV, RUN_DIRECTORY_ENV

# The strategies launch starts workers for; the others run in one process.
LAUNCHED = ("multi_worker", "jax_data_parallel")

# How long a worker gets to exit after SIGTERM before SIGKILL.
STOP_GRACE_SECONDS = 10.0


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument(
        "recipe", help="recipe YAML file (strategy: multi_worker or jax_data_parallel)"
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--ports", help="comma-separated ports, one per worker (default: free ports)"
    )
    parser.add_argument(
        "--restart-failed",
        action="store_true",
        help="when a worker dies, restart the cluster from the last per-epoch backup",
    )
    parser.add_argument(
        "--max-restarts", type=int, default=3, help="give up after this many restarts"
    )
    parser.add_argument("--runs-dir", help="where the chief's run directory goes (default: runs/)")
    return handle


def handle(args: argparse.Namespace) -> int:
    from kplug import RunDirectory, default_runs_root, load_recipe

    if args.workers < 1:
        raise kplug.RunError(f"--workers must be at least 1, got {args.workers}.")
    recipe = load_recipe(args.recipe, args.overrides)
    if recipe.strategy.name not in LAUNCHED:
        raise kplug.RecipeError(
            f"kplug launch runs recipes with strategy multi_worker (TensorFlow) or "
            f"jax_data_parallel (JAX), not {recipe.strategy.name!r}; add the override "
            "strategy.name=multi_worker or strategy.name=jax_data_parallel."
        )
    if getattr(recipe.strategy.config, "cluster", None):
        raise kplug.RecipeError(
            "kplug launch makes the cluster itself; remove strategy.cluster from the recipe."
        )
    if recipe.strategy.name == "jax_data_parallel" and args.restart_failed:
        raise kplug.RunError(
            "--restart-failed resumes from multi_worker's per-epoch backup, which "
            "jax_data_parallel does not write; leave it out (or resume the chief's run "
            "with kplug resume)."
        )
    ports = _ports(args)
    args.jax = recipe.strategy.name == "jax_data_parallel"
    runs_root = Path(args.runs_dir) if args.runs_dir else default_runs_root()
    chief_directory = RunDirectory.create(runs_root, recipe.name)
    scratch = Path(tempfile.mkdtemp(prefix="kplug-launch-"))
    try:
        cluster = Launch(args, ports, chief_directory.path, scratch)
        with cluster.forwarding_signals():
            code = cluster.run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # every worker's temporaries are in it
    if code == 0:
        print(chief_directory.path, flush=True)
    return code


def _ports(args: argparse.Namespace) -> list[int]:
    from kplug_distribute.cluster import check_port_free, free_ports, parse_tf_config

    if not args.ports:
        return free_ports(args.workers)
    try:
        ports = [int(p) for p in args.ports.split(",")]
    except ValueError:
        raise kplug.RunError(f"--ports {args.ports!r}: give comma-separated numbers.") from None
    if len(ports) != args.workers or len(set(ports)) != len(ports):
        raise kplug.RunError(f"--ports: give {args.workers} distinct ports, one per worker.")
    addresses = [f"127.0.0.1:{p}" for p in ports]
    for index in range(args.workers):
        cluster = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        check_port_free(parse_tf_config(cluster, "--ports"))
    return ports


class Launch:
    """The worker processes of one launch, restarted together when asked to."""

    def __init__(self, args: argparse.Namespace, ports: list[int], chief: Path, scratch: Path):
        self.args = args
        self.ports = ports
        self.chief = chief
        self.scratch = scratch
        self.processes: list[subprocess.Popen] = []
        self.threads: list[threading.Thread] = []
        self.stop_signal: int | None = None

    @contextlib.contextmanager
    def forwarding_signals(self):
        """Within the block, SIGTERM and SIGINT to launch are forwarded to every worker
        (each runs in its own session, so only launch can pass them on); `run` then waits
        for the workers and returns 128 + the signal."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        numbers = (signal.SIGTERM, signal.SIGINT)
        previous = {number: signal.signal(number, self._on_signal) for number in numbers}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _on_signal(self, number: int, frame: Any) -> None:
        self.stop_signal = number

    def run(self) -> int:
        restarts = 0
        while True:
            self._start()
            failed = self._wait()
            if self.stop_signal is not None:
                _say(f"{signal.Signals(self.stop_signal).name} received: passed on to the "
                     "workers, which have stopped")  # fmt: skip
                return 128 + self.stop_signal
            if failed is None:
                return 0
            index, code = failed
            self._stop_all()
            if not self.args.restart_failed or restarts >= self.args.max_restarts or code == 2:
                _say(f"worker {index} failed (exit code {code}); stopped the others")
                return 2 if code == 2 else 1
            restarts += 1
            _say(f"worker {index} failed (exit code {code}); restarting the cluster "
                 f"({restarts}/{self.args.max_restarts}) from the last backup")  # fmt: skip

    def _environment(self, index: int) -> dict[str, str]:
        addresses = [f"127.0.0.1:{p}" for p in self.ports]
        env = dict(os.environ)
        if self.args.jax:
            env[jax_processes.JOB_ADDRESSES_ENV] = addresses[0]  # the coordinator
            env[jax_processes.NUM_PROCESSES_ENV] = str(len(addresses))
            env[jax_processes.PROCESS_ID_ENV] = str(index)
        else:
            env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
            )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONUNBUFFERED"] = "1"
        if index == 0:
            env[RUN_DIRECTORY_ENV] = str(self.chief)
        if self.args.restart_failed:
            env[BACKUP_DIR_ENV] = str(self.scratch / "backup")
        # A worker's temporary files (a non-chief's run directory) go below the scratch
        # folder, which launch removes even when the worker was killed.
        temporary = self.scratch / f"worker-{index}"
        temporary.mkdir(exist_ok=True)
        env["TMPDIR"] = str(temporary)
        return env

    def _start(self) -> None:
        self.processes, self.threads = [], []
        command = [sys.executable, "-m", "kplug", "run", self.args.recipe, *self.args.overrides]
        for index in range(len(self.ports)):
            process = subprocess.Popen(
                command,
                env=self._environment(index),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                start_new_session=True,  # our Ctrl-C is forwarded, not sent twice
            )
            thread = threading.Thread(target=_stream, args=(process, index), daemon=True)
            thread.start()
            self.processes.append(process)
            self.threads.append(thread)
        _say(f"started {len(self.ports)} workers on 127.0.0.1 ports "
             f"{', '.join(map(str, self.ports))}; pids "
             f"{', '.join(str(p.pid) for p in self.processes)}")  # fmt: skip

    def _wait(self) -> tuple[int, int] | None:
        """None when every worker succeeded, else (index, exit code) of the first failure."""
        try:
            while True:
                if self.stop_signal is not None:
                    self._stop_all(self.stop_signal)
                    return None
                codes = [p.poll() for p in self.processes]
                for index, code in enumerate(codes):
                    if code not in (None, 0):
                        return index, code
                if all(code == 0 for code in codes):
                    for thread in self.threads:
                        thread.join()
                    return None
                time.sleep(0.2)
        except KeyboardInterrupt:
            self._stop_all()
            raise

    def _stop_all(self, number: int = signal.SIGTERM) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, number)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for thread in self.threads:
            thread.join(timeout=5)


def _stream(process: subprocess.Popen, index: int) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(f"[worker {index}] {line}")
        sys.stdout.flush()


def _say(message: Any) -> None:
    print(f"kplug launch: {message}", file=sys.stderr, flush=True)
