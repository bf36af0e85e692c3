"""Exporters: `keras` (.keras), `saved_model` (model.export) and `tflite` (with
post-training quantization), each measured into the compression report."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, PositiveInt

import kplug
from kplug_compress.bridge import is_tf_keras_model
from kplug_compress.measure import (
    count_parameters,
    example_batches,
    file_sizes,
    measure_tflite,
    report_for,
    without_optimizer,
)
from kplug_compress.step import StepConfig

log = logging.getLogger("kplug")
SMOKE_CALIBRATION_EXAMPLES = 4
# Below this fraction of zero weights TFLite's sparse encoding does not pay off.
SPARSE_ENCODING_THRESHOLD = 0.5


class MeasuredExporter(kplug.Exporter):
    """Writes one file, then adds its measured row to the compression report."""

    name = "export"

    def __init__(self, config: kplug.Config, ctx: kplug.RunContext):
        self.config = config

    def export(self, model: Any, directory: Path, ctx: kplug.RunContext) -> list[Path]:
        report = report_for(ctx, model)
        start = time.perf_counter()
        path = self.write(model, ctx)
        total, nonzero = count_parameters(model)
        row = {
            "stage": f"export {self.label()}",
            "kind": "export",
            "format": self.name,
            "file": str(path.relative_to(ctx.directory.path)),
            "parameters": total,
            "nonzero_parameters": nonzero,
            "sparsity": round(1 - nonzero / total, 4) if total else 0.0,
            **file_sizes(path),
            **self.measure(path, ctx),
            "seconds": round(time.perf_counter() - start, 2),
        }
        report.add(row, getattr(self.config, "max_accuracy_drop", None))
        report.write()
        report.enforce(row, smoke=ctx.smoke)
        return [path]

    def label(self) -> str:
        return self.name

    def write(self, model: Any, ctx: kplug.RunContext) -> Path:
        raise NotImplementedError

    def measure(self, path: Path, ctx: kplug.RunContext) -> dict[str, Any]:
        """Test metrics of the written file; none where it is the model of the row above."""
        return {"note": "the same model as the row above; sizes of the exported file"}


class KerasExporter(MeasuredExporter):
    """`compressed.keras`: the model after the compression steps, without optimizer state."""

    name = "keras"
    filename = "compressed.keras"

    def write(self, model: Any, ctx: kplug.RunContext) -> Path:
        if is_tf_keras_model(model):
            raise kplug.KplugError(
                "export keras: the model after qat is a tf_keras quantization-aware model, "
                "which Keras 3 cannot load; export it with tflite or saved_model instead."
            )
        directory = ctx.directory
        temporary = directory.temporary_path(self.filename)
        try:
            without_optimizer(model).save(temporary)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        return directory.commit(temporary, self.filename)


class SavedModelExporter(MeasuredExporter):
    """`saved_model/`: a TensorFlow SavedModel with a `serve` endpoint (model.export)."""

    name = "saved_model"

    def write(self, model: Any, ctx: kplug.RunContext) -> Path:
        path = ctx.directory.path / "saved_model"
        if is_tf_keras_model(model):
            model.export(str(path))
        else:
            model.export(str(path), verbose=False)
        return path


class TFLiteConfig(StepConfig):
    mode: Literal["none", "dynamic", "float16", "int8"] = Field(
        "none",
        description="post-training quantization: none (float32), dynamic (int8 weights), "
        "float16 (float16 weights), int8 (full integer, calibrated on training examples)",
    )
    calibration_examples: PositiveInt = Field(
        200, description="int8: training examples in the representative dataset"
    )
    integer_io: bool = Field(
        True, description="int8: int8 inputs and outputs too (false: float at the edges)"
    )
    keep_sparsity: bool = Field(
        True,
        description="encode sparse weights sparsely in the flatbuffer (TFLite's "
        f"EXPERIMENTAL_SPARSITY) when at least {SPARSE_ENCODING_THRESHOLD:.0%} are zero",
    )
    unroll: bool = Field(
        True,
        description="recurrent layers (LSTM, GRU, SimpleRNN): convert a copy unrolled over "
        "the run's sequence length, which TFLite builtins run in any interpreter; false: "
        "keep the loop (Select TF ops, which need the Flex delegate)",
    )
    select_tf_ops: Literal["auto", "always", "never"] = Field(
        "auto",
        description="TensorFlow ops the TFLite builtins lack (an RNN's TensorList loop) as "
        "Select TF ops, which need the Flex delegate (in the full tensorflow package, or "
        "tensorflow-lite-select-tf-ops on devices); auto: only when builtins fail",
    )


RECURRENT = ("LSTM", "GRU", "SimpleRNN")


def unrolled(model: Any, ctx: kplug.RunContext) -> Any:
    """A copy of a Keras 3 model whose recurrent layers are unrolled over the run's fixed
    sequence length (the same weights), or `model` itself when it has no recurrent layer
    or no fixed length. The TFLite converter lowers a Keras 3 RNN's loop only to
    TensorList ops, which need the Flex delegate; unrolled, it is builtin ops."""
    if is_tf_keras_model(model):
        return model
    try:
        config = model.get_config()
    except NotImplementedError:  # a subclassed model: it is converted as it is
        return model
    length = (ctx.spec.input_shape or (None,))[0]
    if not isinstance(length, int) or not _unroll(config, length):
        return model
    log.info("export tflite: recurrent layers unrolled over %d steps", length)
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    # The converter traces a Keras 3 model from the shapes of a first call.
    zeros = [np.zeros((1, *tensor.shape[1:]), tensor.dtype) for tensor in copy.inputs]
    copy(zeros[0] if len(zeros) == 1 else zeros)
    return copy


def _unroll(config: Any, length: int) -> bool:
    """Set `unroll` on every recurrent layer's config and the sequence axis of every
    input to `length`, in place; whether there was a recurrent layer."""
    if isinstance(config, list):
        return any([_unroll(item, length) for item in config])  # noqa: C419 (visit all)
    if not isinstance(config, dict):
        return False
    found = False
    if config.get("class_name") in RECURRENT and isinstance(config.get("config"), dict):
        config["config"]["unroll"] = True
        found = True
    for key in ("batch_shape", "build_input_shape"):
        shape = config.get(key)
        if isinstance(shape, list | tuple) and len(shape) == 2 and shape[1] is None:
            config[key] = [shape[0], length]
    return any([_unroll(value, length) for value in config.values()]) or found  # noqa: C419


class TFLiteExporter(MeasuredExporter):
    """`model.<mode>.tflite` (`model.<mode>.sparse.tflite` with sparse weight encoding),
    measured in the TFLite interpreter (accuracy, latency)."""

    name = "tflite"

    def label(self) -> str:
        return f"tflite {self.config.mode}"

    def write(self, model: Any, ctx: kplug.RunContext) -> Path:
        config = self.config
        quantized = [layer.name for layer in model._flatten_layers(include_self=False)
                     if getattr(layer.dtype_policy, "quantization_mode", None)]  # fmt: skip
        if quantized:
            raise kplug.KplugError(
                f"export tflite: layers {', '.join(quantized)} were quantized by Keras "
                "(the quantize step), which the TFLite converter cannot take. Drop the "
                "quantize step and let the tflite exporter quantize (mode dynamic, float16 "
                "or int8)."
            )
        total, nonzero = count_parameters(model)
        if config.unroll:
            model = unrolled(model, ctx)
        sparse = config.keep_sparsity and total and 1 - nonzero / total >= SPARSE_ENCODING_THRESHOLD
        attempts = {"auto": (False, True), "always": (True,), "never": (False,)}
        for select in attempts[config.select_tf_ops]:
            try:
                flatbuffer = self._convert(model, ctx, sparse=sparse, select_tf_ops=select)
                break
            except Exception as error:  # the converter raises several unrelated types
                failure = error
        else:
            message = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
            raise kplug.KplugError(
                f"export tflite {config.mode}: the TFLite converter failed, with TFLite "
                f"builtins{' and Select TF ops' if config.select_tf_ops != 'never' else ''}: "
                f"{message}. Some layers have no integer kernels (mode int8): try mode "
                "dynamic or float16; see docs/compression.md for what converts."
            ) from None
        if select:
            log.info("export tflite %s: with Select TF ops (needs the Flex delegate)",
                     config.mode)  # fmt: skip
        # `.flex`: the file needs the Flex delegate, and two exports of one mode differ.
        name = f"model.{config.mode}{'.sparse' if sparse else ''}{'.flex' if select else ''}.tflite"
        return ctx.directory.write_bytes(name, flatbuffer)

    def _convert(self, model: Any, ctx: kplug.RunContext, *, sparse: bool,
                 select_tf_ops: bool) -> bytes:  # fmt: skip
        import tensorflow as tf

        config = self.config
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the traced signature
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
        optimizations = []
        if config.mode != "none":
            optimizations.append(tf.lite.Optimize.DEFAULT)
        if sparse:
            optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
        converter.optimizations = optimizations
        builtins = tf.lite.OpsSet.TFLITE_BUILTINS
        if config.mode == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if config.mode == "int8":
            converter.representative_dataset = lambda: self._calibration(model, ctx)
            builtins = tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            converter.target_spec.supported_ops = [builtins]
            if config.integer_io:
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        if select_tf_ops:
            converter.target_spec.supported_ops = [builtins, tf.lite.OpsSet.SELECT_TF_OPS]
            # Keep an RNN's TensorList loop as TF ops instead of failing to lower it.
            converter._experimental_lower_tensor_list_ops = False
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()

    def _calibration(self, model: Any, ctx: kplug.RunContext) -> Iterator[list[np.ndarray]]:
        """One training example at a time, as the converter's representative dataset."""
        limit = SMOKE_CALIBRATION_EXAMPLES if ctx.smoke else self.config.calibration_examples
        for x in example_batches(ctx.data.train, 1, limit):
            if isinstance(x, dict):
                yield [np.asarray(x[tensor.name]) for tensor in model.inputs]
            else:
                yield [np.asarray(x)]

    def measure(self, path: Path, ctx: kplug.RunContext) -> dict[str, Any]:
        try:
            return measure_tflite(path, ctx)
        except RuntimeError as error:
            if "Flex delegate" not in str(error):
                raise
            # The pip tensorflow 2.21 interpreter has no Flex delegate for Select TF ops.
            log.warning("export tflite %s: %s needs the Flex delegate, which this "
                        "interpreter lacks; written, not measured",
                        self.config.mode, path.name)  # fmt: skip
            return {"note": "Select TF ops (an RNN loop): runs with the Flex delegate "
                    "(tensorflow-lite-select-tf-ops); not measured here"}  # fmt: skip
