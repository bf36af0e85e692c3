"""`ReversibleStack`: RevNet/Reformer reversible residual blocks whose backward pass
recomputes every block's inputs from its outputs instead of keeping activations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from kplug_transformers.transformer_block import attention_layer


@keras.saving.register_keras_serializable(package="kplug_transformers")
class ReversibleStack(keras.layers.Layer):
    """`num_layers` reversible blocks on two streams, both starting as the input:
    `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`, with F = layer norm + self-attention and G =
    layer norm + feed-forward; the output is `(y1 + y2) / 2`.

    With `recompute` (the point of it), the whole stack is one operation with a custom
    gradient (`jax.custom_vjp` / `tf.custom_gradient`): the forward pass keeps only the last block's
    outputs, and the backward pass walks the blocks from the top, recovering each block's
    inputs (`x2 = y2 - G(y1)`, `x1 = y1 - F(x2)`) and differentiating F and G on them.
    Activation memory is then that of one block, whatever the depth. Without
    `recompute`, the same blocks are differentiated plainly (for comparison).

    The blocks have no dropout: the backward pass must recompute them exactly.

    Args:
        num_layers: reversible blocks.
        num_heads: attention heads; the hidden width must be a multiple of it.
        intermediate_dim: width of the feed-forward layer.
        attention: `full`, `sliding_window`, `axial` or `lsh`.
        attention_options: the attention layer's own arguments.
        causal: position i sees only positions j <= i (decoders).
        layer_norm_epsilon: epsilon of the layer normalizations.
        recompute: custom gradient that recomputes activations (true) or plain autodiff.

    Call arguments:
        x: `(batch, length, hidden)`.
        padding_mask: optional `(batch, length)`, 1 for tokens, 0 for padding.

    Example:
    ```python
    stack = ReversibleStack(16, num_heads=4, intermediate_dim=1024, causal=True)
    y = stack(x)  # activations of one block kept for the gradient, not 16
    ```
    """

    def __init__(self, num_layers: int, num_heads: int, intermediate_dim: int,
                 attention: str = "full", attention_options: dict | None = None,
                 causal: bool = False, layer_norm_epsilon: float = 1e-5,
                 recompute: bool = True, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.attention = attention
        self.attention_options = dict(attention_options or {})
        self.causal = causal
        self.layer_norm_epsilon = layer_norm_epsilon
        self.recompute = recompute

    def build(self, input_shape):
        hidden = input_shape[-1]
        self.attention_sublayers = []
        self.feedforward_sublayers = []
        for index in range(self.num_layers):
            attend = attention_layer(
                self.attention, self.attention_options, num_heads=self.num_heads,
                key_dim=hidden // self.num_heads, causal=self.causal, name="self_attention_layer",
            )  # fmt: skip
            self.attention_sublayers.append(
                _Normalized(attend, self.layer_norm_epsilon, name=f"attention_{index}")
            )
            feed_forward = keras.Sequential(
                [
                    keras.layers.Dense(self.intermediate_dim, activation="gelu",
                                       name="feedforward_intermediate_dense"),
                    keras.layers.Dense(hidden, name="feedforward_output_dense"),
                ],
                name="feedforward",
            )  # fmt: skip
            self.feedforward_sublayers.append(
                _Normalized(feed_forward, self.layer_norm_epsilon, name=f"feedforward_{index}")
            )
        for layer in self.attention_sublayers + self.feedforward_sublayers:
            layer.build(input_shape)

    def call(self, x, padding_mask=None):
        if padding_mask is None:
            padding_mask = ops.ones(ops.shape(x)[:2])
        padding_mask = ops.cast(padding_mask, x.dtype)
        if self.recompute:
            y1, y2 = self._reversible(x, padding_mask)
        else:
            y1, y2 = x, x
            pairs = zip(self.attention_sublayers, self.feedforward_sublayers, strict=True)
            for attend, feed_forward in pairs:
                y1 = y1 + attend(y2, padding_mask)
                y2 = y2 + feed_forward(y1, padding_mask)
        return (y1 + y2) / 2

    def _reversible(self, x, padding_mask):
        sublayers = []  # F0, G0, F1, G1, ...
        for pair in zip(self.attention_sublayers, self.feedforward_sublayers, strict=True):
            sublayers.extend(pair)
        if any(layer.non_trainable_variables for layer in sublayers):
            raise ValueError("reversible blocks must have no non-trainable state")
        sizes = [len(layer.trainable_variables) for layer in sublayers]

        def apply(index, weights, inputs, mask):
            # The layer run on given weight values: the same function under every
            # backend's autodiff, and no variable read inside the custom gradient.
            outputs, _ = sublayers[index].stateless_call(list(weights), [], inputs, mask)
            return outputs

        values = [variable.value for layer in sublayers for variable in layer.trainable_variables]
        stack = _RevNet(apply, sizes)
        return _with_custom_gradient(stack)(x, x, padding_mask, values)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "attention": self.attention,
            "attention_options": self.attention_options,
            "causal": self.causal,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "recompute": self.recompute,
        }


class _Normalized(keras.layers.Layer):
    """`sublayer(layer_norm(x))`: F or G of a reversible block."""

    def __init__(self, sublayer: keras.layers.Layer, epsilon: float, **kwargs):
        super().__init__(**kwargs)
        self.sublayer = sublayer
        self.layer_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="layer_norm")

    def build(self, input_shape):
        self.layer_norm.build(input_shape)
        self.sublayer.build(input_shape)

    def call(self, x, padding_mask):
        x = self.layer_norm(x)
        if isinstance(self.sublayer, keras.Sequential):
            return self.sublayer(x)
        return self.sublayer(x, padding_mask=padding_mask)


class _RevNet:
    """The forward and backward passes of reversible blocks `apply(index, weights, x,
    mask)`, sublayers F0, G0, F1, G1, ... with `sizes` weights each."""

    def __init__(self, apply: Callable, sizes: Sequence[int]):
        self.apply = apply
        self.sizes = sizes

    def forward(self, x1, x2, mask, values):
        weights = _split(values, self.sizes)
        for index in range(0, len(weights), 2):
            x1 = x1 + self.apply(index, weights[index], x2, mask)
            x2 = x2 + self.apply(index + 1, weights[index + 1], x1, mask)
        return x1, x2

    def backward(self, outputs, mask, values, cotangents):
        """Gradients of x1, x2 and every weight value, from the outputs y1, y2 and their
        cotangents; each block's inputs are recovered from its outputs on the way down."""
        (y1, y2), (dy1, dy2) = outputs, cotangents
        weights = _split(values, self.sizes)
        grads = [None] * len(weights)
        for index in range(len(weights) - 2, -1, -2):
            g_out, (dg_dy1, *grads[index + 1]) = _vjp(
                lambda y, *w, i=index + 1: self.apply(i, w, y, mask), (y1, *weights[index + 1]), dy2
            )
            y2 = y2 - g_out  # the block's input x2
            dy1 = dy1 + dg_dy1
            f_out, (df_dx2, *grads[index]) = _vjp(
                lambda y, *w, i=index: self.apply(i, w, y, mask), (y2, *weights[index]), dy1
            )
            y1 = y1 - f_out  # the block's input x1
            dy2 = dy2 + df_dx2
        return dy1, dy2, [g for layer_grads in grads for g in layer_grads]


def _with_custom_gradient(stack: _RevNet) -> Callable:
    """`stack.forward(x1, x2, mask, values)` with `stack.backward` as its gradient, which
    keeps only the outputs (and weights) for the backward pass: `jax.custom_vjp` or
    `tf.custom_gradient` (`keras.ops.custom_gradient` leaks JAX tracers through the
    closure of the backward pass when jitted, and has no explicit residuals)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        run = jax.custom_vjp(stack.forward)

        def forward(x1, x2, mask, values):
            outputs = stack.forward(x1, x2, mask, values)
            return outputs, (outputs, mask, values)

        def backward(residuals, cotangents):
            outputs, mask, values = residuals
            dx1, dx2, dvalues = stack.backward(outputs, mask, values, cotangents)
            return dx1, dx2, jax.numpy.zeros_like(mask), dvalues

        run.defvjp(forward, backward)
        return run
    if backend == "tensorflow":
        import tensorflow as tf

        def run(x1, x2, mask, values):
            @tf.custom_gradient
            def differentiable(x1, x2, *values):
                outputs = stack.forward(x1, x2, mask, values)

                def gradient(*cotangents):
                    dx1, dx2, dvalues = stack.backward(outputs, mask, values, cotangents)
                    return (dx1, dx2, *dvalues)

                return outputs, gradient

            return differentiable(x1, x2, *values)

        return run
    raise NotImplementedError(
        f"reversible blocks have a custom gradient for the tensorflow and jax backends, not "
        f"{backend}; use reversible: false"
    )


def _split(values: Sequence[Any], sizes: Sequence[int]) -> list[tuple]:
    parts, start = [], 0
    for size in sizes:
        parts.append(tuple(values[start : start + size]))
        start += size
    return parts


def _vjp(function: Callable, inputs: tuple, cotangent: Any) -> tuple[Any, list]:
    """`function(*inputs)` and the gradients of `sum(cotangent * function(*inputs))` with
    respect to each input: the backend's own vector-Jacobian product."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        outputs, pullback = jax.vjp(function, *inputs)
        return outputs, list(pullback(cotangent))
    if backend == "tensorflow":
        import tensorflow as tf

        # In a graph, recomputing a block could otherwise run as soon as its inputs are
        # rebuilt, before the blocks above it are differentiated, and keep every block's
        # activations alive at once: wait for the cotangent.
        with tf.control_dependencies([cotangent]):
            inputs = [tf.identity(x) for x in inputs]
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = function(*inputs)
        return outputs, tape.gradient(outputs, inputs, output_gradients=cotangent)
    raise NotImplementedError(
        f"reversible blocks have a custom gradient for the tensorflow and jax backends, "
        f"not {backend}"
    )
