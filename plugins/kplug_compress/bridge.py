"""The bridge between Keras 3 and tf_keras (Keras 2) models of standard layers.

TF-MOT 0.8 works only on tf_keras models (tensorflow/model-optimization#1119) and kplug's
models are Keras 3. `to_tf_keras` rebuilds a Keras 3 Sequential or functional model layer
by layer as a tf_keras functional model, with the same names, configurations and
weights; `to_keras` does the reverse. Both walk the layer graph from the outputs back to
the inputs, so branches, merges (Add, Concatenate) and shared layers are kept.
"""

from __future__ import annotations

import inspect
from typing import Any

from kplug import KplugError

# Layers the bridge converts (tested one by one: outputs agree after a round trip).
BRIDGED_LAYERS = frozenset(
    {
        "Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D",
        "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D",
        "GlobalAveragePooling1D", "GlobalAveragePooling2D",
        "Flatten", "Reshape", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
        "ZeroPadding1D", "ZeroPadding2D",
        "BatchNormalization", "LayerNormalization", "Embedding",
        "LSTM", "GRU", "SimpleRNN",
        "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax",
        "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    }
)  # fmt: skip

# Options one Keras has and the other lacks are dropped when they hold the value that
# means the other Keras' fixed behaviour; any other value makes the layer unbridgeable.
NEUTRAL_OPTIONS: dict[str, tuple[Any, ...]] = {
    "quantization_config": (None,),
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "rms_scaling": (False,),
    "synchronized": (False,),
    "renorm": (False,),
    "renorm_clipping": (None,),
    "time_major": (False,),
    "input_length": (None,),
    "use_cudnn": ("auto",),
    "zero_output_for_mask": (False,),
    "data_format": ("channels_last", None),
    "groups": (1,),
    "trainable": (True,),
    "noise_shape": (None,),
}
# Options without effect on a trained layer's outputs: random seeds (dropout masks are
# drawn afresh anyway), the RNN kernel implementation, renorm's unused momentum, and
# initializers (the weights are copied).
IGNORED_OPTIONS = frozenset({"seed", "implementation", "renorm_momentum", "batch_input_shape"})
# Options a layer takes through **kwargs rather than its signature.
KWARGS_OPTIONS = frozenset({"name", "dtype", "trainable", "activity_regularizer", "autocast",
                            "zero_output_for_mask", "implementation"})  # fmt: skip
# Same option, different names: Keras 3 name -> tf_keras name, per layer class.
RENAMED_OPTIONS: dict[str, dict[str, str]] = {"LeakyReLU": {"negative_slope": "alpha"}}

NATIVE_STEPS = "quantize, distill and low_rank"


class UnbridgeableModelError(KplugError):
    """A model with layers the Keras 3 <-> tf_keras bridge cannot convert.

    Args:
        step: the compression step that needed the bridge.
        problems: `name (Class): reason` for each layer that cannot be bridged.
    """

    def __init__(self, step: str, problems: list[str]):
        self.problems = problems
        listing = "; ".join(problems)
        super().__init__(
            f"{step} runs on TF-MOT, which works only on tf_keras models, and the model has "
            f"layers the Keras 3 -> tf_keras bridge cannot convert: {listing}. The bridge "
            "handles Sequential and functional models of standard layers "
            f"({', '.join(sorted(BRIDGED_LAYERS))}). Steps that work on any Keras 3 model, "
            f"keras-hub transformers included: {NATIVE_STEPS}."
        )


def to_tf_keras(model: Any, *, step: str = "the bridge") -> Any:
    """A tf_keras functional model equal to the Keras 3 `model` (names, weights, outputs).

    Raises:
        UnbridgeableModelError: listing every layer it cannot convert.
    """
    import keras
    import tf_keras

    problems = unbridgeable_layers(model)
    if problems:
        raise UnbridgeableModelError(step, problems)
    walker = _GraphWalker(
        source=keras,
        target=tf_keras,
        make_input=lambda layer: tf_keras.Input(
            batch_shape=_input_batch_shape(layer), dtype=_input_dtype(layer), name=layer.name
        ),
        step=step,
    )
    return walker.convert(model)


def to_keras(model: Any, *, step: str = "the bridge") -> Any:
    """A Keras 3 functional model equal to the tf_keras `model` (after TF-MOT's strip)."""
    import keras
    import tf_keras

    walker = _GraphWalker(
        source=tf_keras,
        target=keras,
        make_input=lambda layer: keras.Input(
            batch_shape=_input_batch_shape(layer), dtype=_input_dtype(layer), name=layer.name
        ),
        step=step,
    )
    return walker.convert(model)


def is_tf_keras_model(model: Any) -> bool:
    """Whether `model` is a tf_keras (Keras 2) model, e.g. the result of `qat`."""
    return type(model).__module__.startswith(("tf_keras", "tensorflow_model_optimization"))


def unbridgeable_layers(model: Any) -> list[str]:
    """`name (Class): reason` for each layer of a Keras 3 model the bridge cannot convert;
    empty when the whole model converts."""
    import keras

    if not (isinstance(model, keras.Model) and _has_graph(model)):
        return [f"{model.name} ({type(model).__name__}): a subclassed model has no layer graph"]
    problems = []
    if not _is_graph_model(model, keras):
        problems.append(f"{model.name} ({type(model).__name__}): a model class of its own")
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if isinstance(layer, keras.Model):
            problems.extend(unbridgeable_layers(layer))
            continue
        reason = _layer_problem(layer)
        if reason:
            problems.append(f"{layer.name} ({type(layer).__name__}): {reason}")
    return problems


def _layer_problem(layer: Any) -> str | None:
    import tf_keras

    name = type(layer).__name__
    if name not in BRIDGED_LAYERS or not type(layer).__module__.startswith("keras."):
        return "not a standard layer the bridge knows"
    try:
        _target_config(layer.get_config(), getattr(tf_keras.layers, name), to_legacy=True)
    except _Unbridgeable as error:
        return str(error)
    return None


class _Unbridgeable(Exception):
    pass


def _target_config(config: dict[str, Any], target_class: type, *, to_legacy: bool) -> dict:
    """A layer config rewritten for the other Keras: dtype policies by name, initializers
    by class name (the weights are copied anyway), renamed and neutral options handled."""
    class_name = target_class.__name__
    renames = RENAMED_OPTIONS.get(class_name, {})
    if not to_legacy:
        renames = {new: old for old, new in renames.items()}
    accepted = _accepted_options(target_class)
    out: dict[str, Any] = {}
    for key, value in config.items():
        key = renames.get(key, key)
        if key in IGNORED_OPTIONS:
            continue
        if key not in accepted:
            if key.endswith("_initializer") or value in NEUTRAL_OPTIONS.get(key, ()):
                continue
            if key.endswith(("_regularizer", "_constraint")) and value is None:
                continue
            raise _Unbridgeable(f"option {key}={value!r} has no equivalent in the other Keras")
        if key == "dtype":
            value = _policy_name(value)
        elif key.endswith("_initializer") and isinstance(value, dict):
            value = value["class_name"]
        elif key.endswith(("_regularizer", "_constraint")) and isinstance(value, dict):
            value = {"class_name": value["class_name"], "config": value.get("config", {})}
        elif key == "activation" and not isinstance(value, str):
            raise _Unbridgeable(f"custom activation {value!r}")
        elif key == "axis" and not isinstance(value, int):
            # tf_keras keeps BatchNormalization's axis as a one-element list.
            value = list(value)
            if class_name == "BatchNormalization" and len(value) == 1:
                value = value[0]
        out[key] = value
    return out


def _accepted_options(cls: type) -> set[str]:
    """The constructor arguments of a layer class, up its bases while they pass **kwargs."""
    accepted: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        accepted.update(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL,
                                                                     p.VAR_KEYWORD))  # fmt: skip
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            return accepted - {"self"}
    return (accepted | KWARGS_OPTIONS) - {"self"}


def _policy_name(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("config", {}).get("name", "float32")
    return value


def _is_graph_model(obj: Any, keras_module: Any) -> bool:
    return (
        isinstance(obj, keras_module.Model)
        and type(obj).__name__ in ("Functional", "Sequential")
        and _has_graph(obj)
    )


def _has_graph(model: Any) -> bool:
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


def _input_batch_shape(layer: Any) -> tuple:
    config = layer.get_config()
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    return tuple(shape)


def _input_dtype(layer: Any) -> str:
    return _policy_name(layer.get_config().get("dtype")) or "float32"


class _GraphWalker:
    """Rebuilds a functional graph in the other Keras, one converted layer per layer."""

    def __init__(self, *, source: Any, target: Any, make_input: Any, step: str):
        self.source = source
        self.target = target
        self.make_input = make_input
        self.step = step
        self.to_legacy = target.__name__.startswith("tf_keras")
        self.layers: dict[int, Any] = {}
        self.outputs: dict[tuple[int, int], Any] = {}

    def convert(self, model: Any) -> Any:
        if not _is_graph_model(model, self.source):
            raise UnbridgeableModelError(
                self.step, [f"{model.name} ({type(model).__name__}): not a graph model"]
            )
        if type(model).__name__ == "Sequential":
            # A Sequential's graph may be shared with the model it is nested in; its layer
            # list is what defines it.
            inputs = self.make_input(model.inputs[0]._keras_history[0])
            outputs = inputs
            for layer in model.layers:
                outputs = self._layer(layer)(outputs)
        else:
            inputs = _map_nested(self._tensor, model.input)
            outputs = _map_nested(self._tensor, model.output)
        return self.target.Model(inputs, outputs, name=model.name)

    def _tensor(self, tensor: Any) -> Any:
        layer, node_index, tensor_index = tensor._keras_history
        key = (id(layer), node_index)
        if key not in self.outputs:
            self.outputs[key] = self._call_node(layer, node_index)
        outputs = self.outputs[key]
        return outputs[tensor_index] if isinstance(outputs, list | tuple) else outputs

    def _call_node(self, layer: Any, node_index: int) -> Any:
        if type(layer).__name__ == "InputLayer":
            return self.make_input(layer)
        node = layer._inbound_nodes[node_index]
        if hasattr(node, "arguments"):  # Keras 3
            args, kwargs = node.arguments.args, node.arguments.kwargs
        else:  # tf_keras
            args, kwargs = node.call_args, node.call_kwargs
        convert = self._convert_argument
        args = [_map_nested(convert, a) for a in args]
        kwargs = {k: _map_nested(convert, v) for k, v in kwargs.items()}
        result = self._layer(layer)(*args, **kwargs)
        return list(result) if isinstance(result, tuple) else result

    def _convert_argument(self, value: Any) -> Any:
        return self._tensor(value) if hasattr(value, "_keras_history") else value

    def _layer(self, layer: Any) -> Any:
        """The converted layer (converted once, so shared layers stay shared)."""
        if id(layer) in self.layers:
            return self.layers[id(layer)]
        if _is_graph_model(layer, self.source):
            converted = _GraphWalker(
                source=self.source, target=self.target, make_input=self.make_input,
                step=self.step,
            ).convert(layer)  # fmt: skip
            converted.set_weights(layer.get_weights())
        else:
            converted = _BuiltLayer(self._new_layer(layer), layer)
        self.layers[id(layer)] = converted
        return converted

    def _new_layer(self, layer: Any) -> Any:
        class_name = type(layer).__name__
        cls = getattr(self.target.layers, class_name, None)
        if cls is None:
            raise UnbridgeableModelError(
                self.step, [f"{layer.name} ({class_name}): no such layer in the other Keras"]
            )
        try:
            config = _target_config(layer.get_config(), cls, to_legacy=self.to_legacy)
            return cls.from_config(config)
        except (_Unbridgeable, TypeError, ValueError) as error:
            raise UnbridgeableModelError(
                self.step, [f"{layer.name} ({class_name}): {error}"]
            ) from None


class _BuiltLayer:
    """Calls the converted layer, then copies the source layer's weights into it (the
    first call is what builds it)."""

    def __init__(self, layer: Any, source: Any):
        self.layer = layer
        self.source = source
        self.copied = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        outputs = self.layer(*args, **kwargs)
        if not self.copied:
            self.layer.set_weights(self.source.get_weights())
            self.copied = True
        return outputs


def _map_nested(fn: Any, value: Any) -> Any:
    if isinstance(value, list | tuple):
        return type(value)(_map_nested(fn, v) for v in value)
    if isinstance(value, dict):
        return {k: _map_nested(fn, v) for k, v in value.items()}
    return fn(value)
