"""TFLite files in two interpreters side by side: TensorFlow's `tf.lite.Interpreter`
(deprecated) and LiteRT's `ai_edge_litert.interpreter.Interpreter`; and Keras 3's own
`model.export(format="litert")` against kplug's `tflite` exporter.

    .venv/bin/python benchmarks/litert_interpreters.py [--runs-dir /tmp/litert] [--epochs 3]

1. CNN: `recipes/mnist_cnn.yaml` (train.epochs=EPOCHS) exported as tflite none, dynamic,
   float16 and int8; plus `model.export(format="litert")` of its model.keras. For each
   file and interpreter: test accuracy on the run's test split and the median latency of
   one single-example invocation (one thread), the interpreters alternating in rounds.
2. RNN: `recipes/lstm_pydoc.yaml` (one epoch on data.limit windows: the weights only
   need to exist) exported unrolled (none, dynamic, float16) and with Select TF ops
   (`unroll: false`); for each file: bytes, whether it runs in each interpreter, and the
   largest difference of its outputs from Keras' on test windows.
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

CNN_EXPORTS = ("[{name: tflite, mode: none}, {name: tflite, mode: dynamic}, "
               "{name: tflite, mode: float16}, {name: tflite, mode: int8}]")  # fmt: skip
RNN_EXPORTS = ("[{name: tflite, mode: none}, {name: tflite, mode: dynamic}, "
               "{name: tflite, mode: float16}, {name: tflite, mode: none, unroll: false, "
               "select_tf_ops: always}]")  # fmt: skip


def interpreters() -> dict:
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    def legacy(**kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(**kwargs)

    return {"tf.lite.Interpreter": legacy, "ai_edge_litert": LiteRT}


class Runner:
    """One interpreter on one file, (de)quantizing int8 inputs and outputs."""

    def __init__(self, make, path: Path):
        self.interpreter = make(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], x.shape)
            self.interpreter.allocate_tensors()
            self.batch = len(x)
        self.interpreter.set_tensor(self.input["index"], quantized(x, self.input))
        self.interpreter.invoke()
        return dequantized(self.interpreter.get_tensor(self.output["index"]), self.output)

    def invoke_seconds(self, runs: int) -> list[float]:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            times.append(time.perf_counter() - start)
        return times


def quantized(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if np.issubdtype(detail["dtype"], np.integer) and scale:
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])
    return x.astype(detail["dtype"])


def dequantized(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if np.issubdtype(detail["dtype"], np.integer) and scale:
        return (y.astype(np.float32) - zero) * scale
    return y


def run_recipe(recipe: str, runs_dir: Path, overrides: list[str]) -> Path:
    from kplug import load_recipe
    from kplug.runner import run

    print("$ kplug run", recipe, *overrides, flush=True)
    return run(
        load_recipe(recipe, overrides), runs_root=runs_dir, argv=["benchmark"]
    ).directory.path


def test_split(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The run's test split as arrays, loaded and adapted as `kplug evaluate` does."""
    from kplug.context import RunContext
    from kplug.inference import read_inference
    from kplug.inference.prediction import pinned_overrides, run_recipe
    from kplug.plugins import registry
    from kplug.stages import load_data

    pins = pinned_overrides(run_recipe(run_dir), read_inference(run_dir), run_dir)
    recipe = run_recipe(run_dir, pins)
    ctx = RunContext(recipe, registry(), argv=["benchmark"])
    ctx.strategy = ctx.build(recipe.strategy)
    ctx.data = load_data(ctx)
    data = ctx.build(recipe.objective).adapt(ctx.data, ctx)
    if isinstance(data.test, tuple):
        return np.asarray(data.test[0]), np.asarray(data.test[1])
    if hasattr(data.test, "gather"):  # a causal_lm's streamed token windows
        return data.test.gather(np.arange(len(data.test)))
    xs, ys = zip(*data.test.batch(256).as_numpy_iterator(), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def cnn(runs_dir: Path, epochs: int) -> None:
    import keras

    run_dir = run_recipe("recipes/mnist_cnn.yaml", runs_dir,
                         [f"train.epochs={epochs}", f"export={CNN_EXPORTS}"])  # fmt: skip
    x, y = test_split(run_dir)
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    keras_accuracy = float(np.mean(model.predict(x, verbose=0).argmax(-1) == y))
    litert_path = run_dir / "keras_export.tflite"
    model.export(str(litert_path), format="litert", verbose=False)
    files = sorted(run_dir.glob("model.*.tflite")) + [litert_path]
    makers = interpreters()
    print(f"\nKeras test accuracy {keras_accuracy:.4f} on {len(y)} images\n")
    print("| file | bytes | interpreter | accuracy | max diff from Keras | max diff between "
          "the interpreters | latency ms (median) | latency ratio litert / tf.lite |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    reference = model.predict(x, verbose=0)
    for path in files:
        runners = {name: Runner(make, path) for name, make in makers.items()}
        rows, outputs = {}, []
        for name, runner in runners.items():
            scores = np.concatenate([runner(x[i : i + 100]) for i in range(0, len(x), 100)])
            outputs.append(scores)
            rows[name] = [float(np.mean(scores.argmax(-1) == y)),
                          float(np.abs(scores - reference).max())]  # fmt: skip
            runner(x[:1])
        between = float(np.abs(outputs[0] - outputs[1]).max())
        times = {name: [] for name in runners}
        for _ in range(20):  # alternate, so both see the same load
            for name, runner in runners.items():
                times[name] += runner.invoke_seconds(25)
        medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
        ratio = medians["ai_edge_litert"] / medians["tf.lite.Interpreter"]
        for name in runners:
            accuracy, diff = rows[name]
            print(f"| `{path.name}` | {path.stat().st_size:,} | {name} | {accuracy:.4f} | "
                  f"{diff:.2e} | {between:.1e} | {medians[name]:.4f} | {ratio:.3f} |")  # fmt: skip


def rnn(runs_dir: Path, limit: int) -> None:
    import keras

    run_dir = run_recipe("recipes/lstm_pydoc.yaml", runs_dir,
                         ["train.epochs=1", f"data.limit={limit}",
                          f"export={RNN_EXPORTS}"])  # fmt: skip
    x, _ = test_split(run_dir)
    x = x[:8]
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    reference = model.predict(x, verbose=0)
    print(
        f"\nRNN: {x.shape[0]} test windows of {x.shape[1]} tokens; model.keras "
        f"{(run_dir / 'model.keras').stat().st_size:,} bytes\n"
    )
    try:
        model.export(str(run_dir / "keras_export.tflite"), format="litert", verbose=False)
    except Exception as error:  # the converter raises several unrelated types
        print(f"Keras export(format='litert'): {str(error).splitlines()[0][:300]}\n")
    print("| file | bytes | Select TF ops | interpreter | runs | max diff from Keras |")
    print("|---|---:|---|---|---|---:|")
    for path in sorted(run_dir.glob("*.tflite")):
        flex = b"Flex" in path.read_bytes()
        for name, make in interpreters().items():
            try:
                got = Runner(make, path)(x)
                result = ("yes", f"{float(np.abs(got - reference).max()):.2e}")
            except RuntimeError as error:
                result = (f"no: {str(error).splitlines()[0][:70]}", "")
            print(f"| `{path.name}` | {path.stat().st_size:,} | {'yes' if flex else 'no'} | "
                  f"{name} | {result[0]} | {result[1]} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/litert"))
    parser.add_argument("--epochs", type=int, default=3, help="CNN training epochs")
    parser.add_argument("--rnn-limit", type=int, default=2000, help="LSTM data.limit")
    parser.add_argument("--only", choices=("cnn", "rnn"))
    args = parser.parse_args()
    if args.only != "rnn":
        cnn(args.runs_dir, args.epochs)
    if args.only != "cnn":
        rnn(args.runs_dir, args.rnn_limit)


if __name__ == "__main__":
    main()
