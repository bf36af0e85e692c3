"""Where the JAX backend's CPU time goes on `gpt_clm_pydoc`: kplug against plain Keras.

    .venv/bin/python benchmarks/jax_cpu_gpt.py [--limit 200] [--steps 12] [--epochs 3]
        [--rounds 1]

Each row is one child process (one backend per process), one after the other, alternating,
on the same recipe, the same prepared arrays and the same model:

- `kplug`: `kplug run recipes/gpt_clm_pydoc.yaml` (its input pipeline, callbacks,
  checkpoints), `--steps` steps per epoch;
- `kplug no checkpoints`: the same with `train.keep_checkpoints=0` (no checkpoint saved
  at each epoch's end);
- `keras fit`: the model built and compiled by kplug (the same optimizer, schedule, loss
  and metrics), trained by plain `model.fit(x, y, shuffle=True)` on the NumPy arrays (the
  same windows), validating on the same validation windows, no callbacks;
- `keras fit, no XLA` (TensorFlow only): the same with `jit_compile=False` (TensorFlow's
  graph kernels instead of XLA);
- `step only`: the compiled train function called on one batch already on the device, in
  a loop (no input pipeline, no callbacks): the backend's compute for one step.

Epoch times are measured by one callback (epoch begin to end), in wall time and in CPU
time of the whole process (every thread: `time.process_time`); the first epoch compiles
and is left out: the figures are the medians of the others, per step. Prints one line per
run and a table of medians. On a shared machine the wall time measures the other jobs
too; the CPU time much less so.

`--together` instead starts the `kplug` rows of both backends at the same moment, as the
side-by-side full runs of docs/performance.md were, and reports the same figures and
each process' threads: what each backend gets of the machine when they compete.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
RECIPE = str(ROOT / "recipes" / "gpt_clm_pydoc.yaml")
MODES = {
    "jax": ("kplug", "kplug_no_checkpoints", "keras_fit", "step_only"),
    "tensorflow": ("kplug", "kplug_no_checkpoints", "keras_fit", "keras_fit_no_xla",
                   "step_only"),
}  # fmt: skip


def epoch_timer():
    import keras

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.cpu_seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start[0])
            self.cpu_seconds.append(time.process_time() - self._start[1])

    return EpochTimes()


def overrides(args: argparse.Namespace, backend: str) -> list[str]:
    return [f"backend={backend}", f"data.limit={args.limit}", f"train.epochs={args.epochs}",
            f"train.steps_per_epoch={args.steps}", "train.verbose=0",
            "optimizer.schedule.warmup_steps=5"]  # fmt: skip


def run_kplug(args: argparse.Namespace, backend: str, more: list[str]) -> dict:
    import kplug
    from kplug.training import trainer

    timer = epoch_timer()
    build = trainer.Trainer.build_callbacks
    trainer.Trainer.build_callbacks = lambda self: [*build(self), timer]
    with tempfile.TemporaryDirectory() as runs:
        kplug.run(RECIPE, [*overrides(args, backend), *more], runs_root=runs,
                  argv=["benchmark"])  # fmt: skip
    return timed(timer)


def timed(timer) -> dict:
    return {"epochs": timer.seconds, "cpu": timer.cpu_seconds,
            "threads": len(os.listdir("/proc/self/task"))}  # fmt: skip


def kplug_model(args: argparse.Namespace, backend: str):
    """kplug's compiled model and training arrays for the recipe, no run directory."""
    import kplug
    from kplug.runner import build_network
    from kplug.stages import prepare_data, set_up
    from kplug.training.trainer import configure_keras

    recipe = kplug.load_recipe(RECIPE, overrides(args, backend))
    ctx = set_up(recipe)
    configure_keras(recipe)
    objective = prepare_data(ctx)
    model = objective.build(build_network(ctx), ctx)
    objective.compile(model, ctx)
    train, validation = (_arrays(ctx.data.train), _arrays(ctx.data.validation))
    return model, train, validation, recipe.data.options.batch_size


def _arrays(split):
    """The causal_lm windows of a split, materialised as NumPy `(x, y)`."""
    import numpy as np

    return split.gather(np.arange(len(split))) if hasattr(split, "gather") else split


def run_keras_fit(args: argparse.Namespace, backend: str, jit_compile: bool | str) -> dict:
    model, (x, y), validation, batch_size = kplug_model(args, backend)
    if jit_compile is False:
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"],
                      jit_compile=False)  # fmt: skip
    timer = epoch_timer()
    model.fit(x, y, batch_size=batch_size, epochs=args.epochs, steps_per_epoch=args.steps,
              validation_data=validation, shuffle=True, verbose=0,
              callbacks=[timer])  # fmt: skip
    return {**timed(timer), "jit_compile": bool(model.jit_compile)}


def run_step_only(args: argparse.Namespace, backend: str) -> dict:
    """The compiled train step on one batch, `args.steps` times per 'epoch', synchronised
    at each epoch's end only (what the device computes, no pipeline and no callbacks)."""
    import keras

    model, (x, y), _, batch_size = kplug_model(args, backend)
    batch = (x[:batch_size], y[:batch_size])
    model.train_on_batch(*batch)  # compiles
    seconds, cpu = [0.0], [0.0]  # no compile epoch to leave out
    for _ in range(args.epochs):
        start = (time.perf_counter(), time.process_time())
        for _ in range(args.steps):
            logs = model.train_on_batch(*batch, return_dict=True)
        keras.ops.convert_to_numpy(logs["loss"])
        seconds.append(time.perf_counter() - start[0])
        cpu.append(time.process_time() - start[1])
    return {"epochs": seconds, "cpu": cpu, "threads": len(os.listdir("/proc/self/task"))}


def child(args: argparse.Namespace) -> int:
    backend, mode = args.child
    if mode.startswith("kplug"):
        more = ["train.keep_checkpoints=0"] if mode == "kplug_no_checkpoints" else []
        out = run_kplug(args, backend, more)
    elif mode == "step_only":
        out = run_step_only(args, backend)
    else:
        out = run_keras_fit(args, backend, jit_compile=mode != "keras_fit_no_xla")
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def per_step(epochs: list[float], steps: int) -> float:
    return statistics.median(epochs[1:]) / steps


def start(args: argparse.Namespace, backend: str, mode: str) -> subprocess.Popen:
    command = [sys.executable, __file__, "--child", backend, mode, f"--limit={args.limit}",
               f"--steps={args.steps}", f"--epochs={args.epochs}"]  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": backend}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)  # fmt: skip


def result(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate()
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if process.returncode or not lines:
        sys.exit(f"a benchmark child failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=200, help="data.limit (documents)")
    parser.add_argument("--steps", type=int, default=12, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs (the first compiles)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--together", action="store_true",
                        help="the kplug runs of both backends at once")  # fmt: skip
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    backends = args.backends.split(",")
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_ in range(args.rounds):
        if args.together:
            runs = [[(b, "kplug", start(args, b, "kplug")) for b in backends]]
        else:
            runs = [[(b, mode, None)] for b in backends for mode in MODES[b]]
        for group in runs:
            started = [(b, mode, p or start(args, b, mode)) for b, mode, p in group]
            for backend, mode, process in started:
                out = result(process)
                step = per_step(out["epochs"], args.steps), per_step(out["cpu"], args.steps)
                results.setdefault((backend, mode), []).append(step)
                print(f"round {round_ + 1} {backend:10} {mode:20} {1000 * step[0]:7.1f} ms/step "
                      f"{1000 * step[1]:7.1f} CPU ms/step  threads {out['threads']:3}  epochs "
                      f"{[round(s, 2) for s in out['epochs']]}  load {os.getloadavg()[0]:.1f}",
                      flush=True)  # fmt: skip
    print("\nmedians:                          wall ms/step   CPU ms/step")
    for (backend, mode), steps in results.items():
        wall = statistics.median(s[0] for s in steps)
        cpu = statistics.median(s[1] for s in steps)
        print(f"  {backend:10} {mode:20} {1000 * wall:12.1f} {1000 * cpu:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
