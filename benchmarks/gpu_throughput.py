"""GPT-2 124M training throughput: `kplug run recipes/gpt2_124m.yaml` against plain keras-hub.

Both train the same decoder (keras-hub GPT2Backbone shapes, bf16 mixed precision, AdamW,
the same batch and sequence length, random tokens) on the JAX backend for `epochs` epochs of
`steps` steps each, every configuration in its own fresh process, one after the other in
this invocation. Epoch 1 holds the XLA compilation; the later epochs are timed (the epoch
clock stops when Keras fetches the epoch's metrics, so the device has finished). Printed and
written as JSON: tokens/s, step time, compile time, and MFU, counting 6N + 12*L*d*T FLOPs
per token (N: parameters without the position embedding; PaLM appendix B, nanoGPT) against
989 TFLOP/s, the dense bf16 peak of an H100/H200.

    python benchmarks/gpu_throughput.py                      # on the GPU: 16x1024 and 64x1024
    python benchmarks/gpu_throughput.py --batch 16 --flash both --steps 20
    python benchmarks/gpu_throughput.py --tiny               # CPU smoke run (CI): tiny shapes
    python benchmarks/gpu_throughput.py --small --steps 30   # CPU: 4 layers, 128 wide

kplug is run through its command line (`kplug.cli.main(["run", ...])`) with the recipe and
overrides; a throwaway plugin adds the epoch timer as a recipe callback, the way any plugin
callback is added. Checkpoints are off in both (keep_checkpoints=0), validation is empty.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "gpt2_124m.yaml"
PEAK_FLOPS = 989e12  # dense bf16, H100/H200 SXM datasheet
GPT2_SMALL = {"layers": 12, "heads": 12, "hidden": 768, "vocabulary": 50304, "sequence": 1024}
TINY = {"layers": 2, "heads": 2, "hidden": 64, "vocabulary": 512, "sequence": 64}
SMALL = {"layers": 4, "heads": 4, "hidden": 128, "vocabulary": 4096, "sequence": 128}
OPTIMIZER = {"learning_rate": 6.0e-4, "weight_decay": 0.1, "beta_1": 0.9, "beta_2": 0.95,
             "global_clipnorm": 1.0, "warmup_steps": 20}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker = keras_hub_worker if args.worker == "keras_hub" else kplug_worker
        result = worker(args)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    rows = []
    for batch, flash, frameworks in measurement_plan(args):
        for worker in frameworks:
            rows.append(measure(worker, batch, flash, args))
            print(format_row(rows[-1]), flush=True)
            if args.json:  # after every row: a run cut short keeps what it measured
                Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print_summary(rows)
    return 0 if all("error" not in row for row in rows) else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cpu = parser.add_mutually_exclusive_group()
    cpu.add_argument("--tiny", action="store_true", help="tiny shapes, on CPU (CI)")
    cpu.add_argument("--small", action="store_true", help="small shapes, on CPU")
    parser.add_argument("--batch", type=int, nargs="+", default=None, help="batch sizes")
    parser.add_argument("--flash", choices=["on", "off", "both"], default="on")
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="1 compile epoch + timed ones")
    parser.add_argument(
        "--frameworks",
        nargs="+",
        default=["kplug", "keras_hub"],
        choices=["kplug", "keras_hub"],
    )
    parser.add_argument(
        "--plan", nargs="+", metavar="BATCH:FLASH:FRAMEWORK+...",
        help="measurements in this order instead of --batch/--flash/--frameworks, e.g. "
        "16:on:kplug+keras_hub 64:off:kplug",
    )  # fmt: skip
    parser.add_argument("--json", help="write the rows to this JSON file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    parser.add_argument("--worker", choices=["kplug", "keras_hub"], help=argparse.SUPPRESS)
    parser.add_argument("--flash-on", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.shape = TINY if args.tiny else SMALL if args.small else GPT2_SMALL
    args.on_cpu = args.tiny or args.small
    args.batch = args.batch or ([4] if args.on_cpu else [16, 64])
    args.steps = args.steps or (3 if args.tiny else 20)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first one compiles")
    return args


def measurement_plan(args: argparse.Namespace) -> list[tuple[int, bool, list[str]]]:
    """(batch, flash, frameworks) in the order to measure them."""
    if args.plan:
        plan = []
        for entry in args.plan:
            batch, flash, frameworks = entry.split(":")
            plan.append((int(batch), flash == "on", frameworks.split("+")))
        return plan
    flashes = {"on": [True], "off": [False], "both": [False, True]}[args.flash]
    return [(batch, flash, args.frameworks) for batch in args.batch for flash in flashes]


def measure(worker: str, batch: int, flash: bool, args: argparse.Namespace) -> dict:
    """One configuration in a fresh process (its own XLA compilation and device memory)."""
    command = [sys.executable, __file__, "--worker", worker, "--batch", str(batch),
               "--steps", str(args.steps), "--epochs", str(args.epochs)]  # fmt: skip
    command += ["--tiny"] * args.tiny + ["--small"] * args.small + ["--flash-on"] * flash
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1"}
    row = {"framework": worker, "batch": batch, "sequence": args.shape["sequence"],
           "flash": flash}  # fmt: skip
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=args.timeout, cwd=ROOT)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {**row, "error": f"timed out after {args.timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        tail = (done.stdout + done.stderr).strip().splitlines()[-12:]
        return {**row, "error": f"exit {done.returncode}: " + " | ".join(tail)}
    return {**row, **figures(json.loads(lines[-1][7:]), batch, args)}


def figures(result: dict, batch: int, args: argparse.Namespace) -> dict:
    """Tokens/s, step time, compile time and MFU from the epoch times of one worker."""
    shape, steps = args.shape, args.steps
    timed = sorted(result["epoch_seconds"][1:])
    epoch = timed[len(timed) // 2]  # the median timed epoch
    step = epoch / steps
    tokens_per_second = batch * shape["sequence"] * steps / epoch
    n = result["parameters"] - shape["sequence"] * shape["hidden"]  # without positions
    flops_per_token = 6 * n + 12 * shape["layers"] * shape["hidden"] * shape["sequence"]
    return {
        "parameters": result["parameters"],
        "tokens_per_second": round(tokens_per_second),
        "step_ms": round(1000 * step, 2),
        "compile_seconds": round(result["epoch_seconds"][0] - epoch, 2),
        "mfu": round(flops_per_token * tokens_per_second / PEAK_FLOPS, 4),
        "epoch_seconds": [round(s, 3) for s in result["epoch_seconds"]],
        "final_loss": result["final_loss"],
        "logs_read_on_training_thread": result["logs_read_on_training_thread"],
        "device": result["device"],
    }


def format_row(row: dict) -> str:
    head = (
        f"{row['framework']:>9} batch {row['batch']:>3}x{row['sequence']} flash {row['flash']!s:>5}"
    )
    if "error" in row:
        return f"{head}: FAILED {row['error']}"
    return (f"{head}: {row['tokens_per_second']:>9,} tokens/s  step {row['step_ms']:8.2f} ms  "
            f"compile {row['compile_seconds']:6.1f} s  MFU {100 * row['mfu']:5.1f}%  "
            f"loss {row['final_loss']:.3f}  steps whose logs the training thread read "
            f"{row['logs_read_on_training_thread']}  [{row['device']}]")  # fmt: skip


def print_summary(rows: list[dict]) -> None:
    """kplug / keras-hub tokens per second for each configuration both measured."""
    by_key = {(r["framework"], r["batch"], r["flash"]): r for r in rows if "error" not in r}
    for (framework, batch, flash), row in by_key.items():
        other = by_key.get(("keras_hub", batch, flash))
        if framework.startswith("kplug") and other:
            ratio = row["tokens_per_second"] / other["tokens_per_second"]
            print(f"{framework} / keras_hub at batch {batch}, flash {flash}: {ratio:.3f}")


# ---------------------------------------------------------------------------------------
# Workers (each in its own process, KERAS_BACKEND=jax)
# ---------------------------------------------------------------------------------------


def epoch_timer():
    """A Keras callback recording each epoch's wall time and the model's size, and counting
    the steps whose logs Keras read on the training thread (each such read makes the next
    step wait for the device): 0 when every callback of the fit is `async_safe`."""
    import threading

    import keras

    class EpochTimer(keras.callbacks.Callback):
        async_safe = True
        seconds: list[float] = []
        read_on_training_thread = 0

        def on_train_batch_end(self, batch, logs=None):
            if threading.current_thread() is threading.main_thread():
                EpochTimer.read_on_training_thread += 1

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            # Keras has fetched the epoch's metrics: the device finished its steps.
            EpochTimer.seconds.append(time.perf_counter() - self._start)
            EpochTimer.loss = float((logs or {})["loss"])
            EpochTimer.parameters = int(self.model.count_params())

    return EpochTimer


def device_name() -> str:
    import jax

    device = jax.devices()[0]
    return f"{device.platform}:{device.device_kind}"


def kplug_worker(args: argparse.Namespace) -> dict:
    """`kplug run recipes/gpt2_124m.yaml` with the benchmark's shape as overrides."""
    import kplug
    from kplug.cli import main as kplug_main
    from kplug.plugins import plugin_manager

    timer = epoch_timer()

    class BenchmarkTimer:
        @kplug.hookimpl
        def register_callbacks(self, register):
            register("benchmark_epoch_timer", lambda config, ctx: timer(),
                     summary="epoch wall times for benchmarks/gpu_throughput.py")  # fmt: skip

    plugin_manager().register(BenchmarkTimer(), name="benchmark-timer")
    shape, batch = args.shape, args.batch[0]
    documents = batch * args.steps * args.epochs + 1  # the stream never runs dry anyway
    overrides = [
        "backend=jax",
        f"data.batch_size={batch}",
        f"data.vocabulary_size={shape['vocabulary']}",
        f"data.document_length={shape['sequence']}",
        f"data.train_documents={documents}",
        "data.validation_documents=0",
        "data.test_documents=0",
        f"model.layers={shape['layers']}",
        f"model.heads={shape['heads']}",
        f"model.hidden={shape['hidden']}",
        f"model.intermediate={4 * shape['hidden']}",
        f"model.max_length={shape['sequence']}",
        f"model.attention={'flash' if args.flash_on else 'full'}",
        f"objective.sequence_length={shape['sequence']}",
        f"train.epochs={args.epochs}",
        f"train.steps_per_epoch={args.steps}",
        "train.keep_checkpoints=0",
        "callbacks=[{name: benchmark_epoch_timer}]",
    ]
    with tempfile.TemporaryDirectory() as runs:
        code = kplug_main(["run", str(RECIPE), "--runs-dir", runs, *overrides])
    if code:
        raise SystemExit(f"kplug run exited {code}")
    return {"epoch_seconds": timer.seconds, "final_loss": timer.loss,
            "parameters": timer.parameters, "device": device_name(),
            "logs_read_on_training_thread": timer.read_on_training_thread}  # fmt: skip


def keras_hub_worker(args: argparse.Namespace) -> dict:
    """The same training in plain Keras + keras-hub, as its documentation writes it."""
    import keras
    import numpy as np
    from keras_hub.models import GPT2Backbone, GPT2CausalLM

    shape, batch = args.shape, args.batch[0]
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("mixed_bfloat16")
    if args.flash_on:
        keras.config.enable_flash_attention()
    backbone = GPT2Backbone(
        vocabulary_size=shape["vocabulary"],
        num_layers=shape["layers"],
        num_heads=shape["heads"],
        hidden_dim=shape["hidden"],
        intermediate_dim=4 * shape["hidden"],
        dropout=0.0,
        max_sequence_length=shape["sequence"],
    )
    model = GPT2CausalLM(backbone=backbone, preprocessor=None)
    total_steps = args.steps * args.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total_steps, alpha=0.1, warmup_target=OPTIMIZER["learning_rate"],
        warmup_steps=OPTIMIZER["warmup_steps"],
    )  # fmt: skip
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=OPTIMIZER["weight_decay"],
        beta_1=OPTIMIZER["beta_1"], beta_2=OPTIMIZER["beta_2"],
        global_clipnorm=OPTIMIZER["global_clipnorm"],
    )  # fmt: skip
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    rng = np.random.default_rng(0)
    windows = rng.integers(3, shape["vocabulary"], (batch * total_steps, shape["sequence"] + 1))
    windows = windows.astype(np.int32)
    padding_mask = np.ones((batch, shape["sequence"]), bool)

    def batches():
        for start in range(0, len(windows), batch):
            window = windows[start : start + batch]
            yield {"token_ids": window[:, :-1], "padding_mask": padding_mask}, window[:, 1:]

    timer = epoch_timer()
    # keras.Model.fit, not GPT2CausalLM.fit: keras-hub's fit batches arrays with tf.data or
    # grain, neither on the GPU machine; with no preprocessor the two run the same steps.
    keras.Model.fit(model, batches(), epochs=args.epochs, steps_per_epoch=args.steps,
                    callbacks=[timer()], verbose=2)  # fmt: skip
    return {"epoch_seconds": timer.seconds, "final_loss": timer.loss,
            "parameters": timer.parameters, "device": device_name(),
            "logs_read_on_training_thread": timer.read_on_training_thread}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
