"""Measuring a model for the compression report: parameters, non-zero parameters, file
sizes, test metrics (Keras or the TFLite interpreter) and single-example latency."""

from __future__ import annotations

import gzip
import io
import logging
import statistics
import tarfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import kplug
from kplug import count_examples, is_array_split, select_examples
from kplug_compress.bridge import is_tf_keras_model
from kplug_compress.report import STATE_KEY, CompressionReport

# Batches of the test split a smoke run evaluates (the runner's own smoke evaluation uses 2).
SMOKE_TEST_BATCHES = 2
LATENCY_RUNS = 50
SMOKE_LATENCY_RUNS = 3
MEASURED_DIR = "compression"
log = logging.getLogger("kplug")


def report_for(ctx: kplug.RunContext, model: Any) -> CompressionReport:
    """The run's report; the first call measures `model` as the baseline."""
    report = ctx.state.get(STATE_KEY)
    if report is not None:
        return report
    objective = ctx.build(ctx.recipe.objective)
    report = CompressionReport(
        ctx.directory,
        metric=objective.monitor.removeprefix("val_"),
        higher_is_better=objective.mode == "max",
        judge=model,  # compiled by the objective
    )
    ctx.state[STATE_KEY] = report
    report.add(measure_model(model, ctx, stage="baseline", filename="00-baseline"))
    report.write()
    return report


def measure_model(
    model: Any, ctx: kplug.RunContext, *, stage: str, filename: str, seconds: float = 0.0,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A report row for a Keras 3 or tf_keras model, saved under `compression/`."""
    path = save_measured(model, ctx.directory.path / MEASURED_DIR / filename)
    total, nonzero = count_parameters(model)
    row: dict[str, Any] = {
        "stage": stage,
        "format": "tf_keras" if is_tf_keras_model(model) else "keras",
        "file": str(path.relative_to(ctx.directory.path)),
        "parameters": total,
        "nonzero_parameters": nonzero,
        "sparsity": round(1 - nonzero / total, 4) if total else 0.0,
        **file_sizes(path),
        "test": evaluate(model, ctx),
    }
    if seconds:
        row["seconds"] = round(seconds, 2)
    if details:
        row["details"] = details
    return row


def count_parameters(model: Any) -> tuple[int, int]:
    """(all weight elements, non-zero weight elements), trainable or not. In a tf_keras
    QAT model only the wrapped layers' own weights count: the wrappers' quantizer ranges
    and preservation state are training machinery that TFLite conversion drops."""
    weights = _qat_layer_weights(model) if is_tf_keras_model(model) else model.get_weights()
    total = nonzero = 0
    for weight in weights:
        total += int(np.size(weight))
        nonzero += int(np.count_nonzero(weight))
    return total, nonzero


def _qat_layer_weights(model: Any) -> list[np.ndarray]:
    weights = []
    for layer in model.layers:
        inner = getattr(layer, "layer", None)
        if inner is not None:  # QuantizeWrapper: the wrapped layer's own variables
            own = [w for w in layer.weights if w.name.startswith(f"{inner.name}/")]
            weights.extend(w.numpy() for w in own)
        elif type(layer).__name__ != "QuantizeLayer":
            weights.extend(layer.get_weights())
    return weights


def save_measured(model: Any, stem: Path) -> Path:
    """Save `model` without optimizer state (that is training state, not the model):
    Keras 3 as `.keras`, tf_keras (TF-MOT QAT models) as `.h5`."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    if is_tf_keras_model(model):
        path = stem.with_suffix(".h5")
        with warnings.catch_warnings():  # tf_keras calls .h5 legacy; QAT wrappers need it
            warnings.simplefilter("ignore")
            model.save(path, include_optimizer=False, save_format="h5")
        return path
    path = stem.with_suffix(".keras")
    without_optimizer(model).save(path)
    return path


def without_optimizer(model: Any) -> Any:
    """A copy of a Keras 3 model with the same weights and no compile state (rebuilt from
    its config: `clone_model` would compile the copy, optimizer included)."""
    import keras

    from kplug import custom_objects

    if getattr(model, "optimizer", None) is None:
        return model
    try:
        with keras.saving.custom_object_scope(custom_objects()):
            copy = type(model).from_config(model.get_config())
    except (TypeError, ValueError) as error:  # a custom layer no plugin declares
        log.warning("measuring %s with its optimizer state: %s", model.name, error)
        return model
    copy.set_weights(model.get_weights())
    return copy


def file_sizes(path: Path) -> dict[str, int]:
    """Bytes on disk and gzipped (level 9); a directory is measured as a tar archive."""
    if path.is_dir():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(path, arcname=path.name)
        data = buffer.getvalue()
        raw = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        data = path.read_bytes()
        raw = len(data)
    return {"bytes": raw, "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}


# ---------------------------------------------------------------------------------------
# Test metrics
# ---------------------------------------------------------------------------------------


def evaluate(model: Any, ctx: kplug.RunContext) -> dict[str, float]:
    """Test metrics of a Keras 3 model (its own compiled metrics) or a tf_keras model
    (the baseline's compiled metrics on its predictions)."""
    if not count_examples(ctx.data.test):
        return {}
    if is_tf_keras_model(model):
        return evaluate_predictions(lambda x: model(x, training=False), ctx)
    steps = SMOKE_TEST_BATCHES if ctx.smoke else None
    batch_size = ctx.recipe.data.options.batch_size
    metrics = ctx.strategy.evaluate(model, ctx.data.test, batch_size=batch_size, steps=steps)
    return {k: round(float(v), 6) for k, v in metrics.items()}


def evaluate_predictions(predict: Callable[[Any], Any], ctx: kplug.RunContext) -> dict:
    """The baseline's compiled metrics on `predict`'s outputs over the test split; no
    loss (the baseline's regularization terms would leak into it)."""
    judge = ctx.state[STATE_KEY].judge
    judge.reset_metrics()
    results: dict[str, Any] = {}
    for x, y in test_batches(ctx):
        results = judge.compute_metrics(x, y, np.asarray(predict(x)))
    results = {k: round(float(v), 6) for k, v in results.items() if k != "loss"}
    judge.reset_metrics()
    return results


def test_batches(ctx: kplug.RunContext) -> Iterator[tuple[Any, Any]]:
    """NumPy `(x, y)` batches of the test split (a few in a smoke run)."""
    batch_size = ctx.recipe.data.options.batch_size
    limit = SMOKE_TEST_BATCHES if ctx.smoke else None
    yield from _batches(ctx.data.test, batch_size, limit)


def example_batches(split: Any, batch_size: int, limit: int | None) -> Iterator[Any]:
    """Inputs only, `limit` batches at most (representative data for calibration)."""
    for x, _ in _batches(split, batch_size, limit):
        yield x


def _batches(split: Any, batch_size: int, limit: int | None) -> Iterator[tuple[Any, Any]]:
    if hasattr(split, "gather"):  # streamed token windows (a causal_lm's windows)
        for index, start in enumerate(range(0, len(split), batch_size)):
            if limit is not None and index >= limit:
                return
            yield split.gather(np.arange(start, min(len(split), start + batch_size)))
        return
    if is_array_split(split):
        n = count_examples(split)
        for index, start in enumerate(range(0, n, batch_size)):
            if limit is not None and index >= limit:
                return
            x, y, *_ = select_examples(split, np.arange(start, min(n, start + batch_size)))
            yield x, y
        return
    for index, (x, y, *_) in enumerate(split.batch(batch_size).as_numpy_iterator()):
        if limit is not None and index >= limit:
            return
        yield x, y


# ---------------------------------------------------------------------------------------
# TFLite
# ---------------------------------------------------------------------------------------


def tflite_interpreter(path: Path, threads: int, *, litert: bool = True) -> Any:
    """LiteRT's interpreter (`ai-edge-litert`, in the tensorflow extra), else (or with
    `litert=False`) TensorFlow's deprecated `tf.lite.Interpreter`: the same accuracy and
    latency on the CNN's files (docs/compression.md, "LiteRT")."""
    try:
        if not litert:
            raise ImportError
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    return Interpreter(model_path=str(path), num_threads=threads)


class TFLiteRunner:
    """Runs a `.tflite` file in the interpreter, quantizing integer inputs and outputs.

    Args:
        path: the flatbuffer file.
        threads: interpreter threads (1 for a stable single-example latency).
    """

    def __init__(self, path: Path, threads: int = 1):
        self.path, self.threads = path, threads
        self.interpreter = tflite_interpreter(path, threads)
        self.interpreter.allocate_tensors()
        self.inputs = self.interpreter.get_input_details()
        self.output = self.interpreter.get_output_details()[0]
        self._batch = None

    def __call__(self, x: Any) -> np.ndarray:
        arrays = self._input_arrays(x)
        batch = len(arrays[0])
        if batch != self._batch:
            for detail, array in zip(self.inputs, arrays, strict=True):
                self.interpreter.resize_tensor_input(detail["index"], array.shape)
            self.interpreter.allocate_tensors()
            self._batch = batch
        for detail, array in zip(self.inputs, arrays, strict=True):
            self.interpreter.set_tensor(detail["index"], _quantize(array, detail))
        try:
            self.interpreter.invoke()
        except RuntimeError as error:
            # LiteRT 2.x's XNNPack delegate refuses some pruned + int8 graphs ("failed to
            # delegate FULLY_CONNECTED node") that TensorFlow's interpreter runs.
            if (
                "delegate" not in str(error)
                or "ai_edge_litert" not in type(self.interpreter).__module__
            ):
                raise
            log.warning("%s: LiteRT could not run it (%s); using tf.lite.Interpreter",
                        self.path.name, str(error).splitlines()[0])  # fmt: skip
            self.interpreter = tflite_interpreter(self.path, self.threads, litert=False)
            self._batch = None
            return self(x)
        return _dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)

    def latency_ms(self, x: Any, runs: int) -> float:
        """Median wall time of one invocation on a single example, in milliseconds."""
        single = _first_example(x)
        for _ in range(3):
            self(single)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            times.append(time.perf_counter() - start)
        return round(statistics.median(times) * 1000, 4)

    def _input_arrays(self, x: Any) -> list[np.ndarray]:
        if not isinstance(x, dict):
            return [np.asarray(x)]
        arrays = []
        for detail in self.inputs:
            matches = [k for k in x if k in detail["name"]]
            if len(matches) != 1:
                raise kplug.KplugError(
                    f"cannot tell which input feeds TFLite input {detail['name']!r} "
                    f"(inputs: {sorted(x)})"
                )
            arrays.append(np.asarray(x[matches[0]]))
        return arrays


def measure_tflite(path: Path, ctx: kplug.RunContext) -> dict[str, Any]:
    """Test metrics through the interpreter and the single-example latency."""
    runner = TFLiteRunner(path)
    out: dict[str, Any] = {"test": {}}
    if count_examples(ctx.data.test):
        out["test"] = evaluate_predictions(runner, ctx)
        first, _ = next(test_batches(ctx))
        runs = SMOKE_LATENCY_RUNS if ctx.smoke else LATENCY_RUNS
        out["latency_ms"] = runner.latency_ms(first, runs)
    return out


def _first_example(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: np.asarray(v)[:1] for k, v in x.items()}
    return np.asarray(x)[:1]


def _quantize(array: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer) and detail["quantization"][0]:
        scale, zero_point = detail["quantization"]
        info = np.iinfo(dtype)
        quantized = np.round(array / scale + zero_point)
        return np.clip(quantized, info.min, info.max).astype(dtype)
    return array.astype(dtype)


def _dequantize(array: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(detail["dtype"], np.integer) and detail["quantization"][0]:
        scale, zero_point = detail["quantization"]
        return (array.astype(np.float32) - zero_point) * scale
    return array
