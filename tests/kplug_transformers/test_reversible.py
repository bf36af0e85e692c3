"""`ReversibleStack`: the custom gradient that recomputes activations from outputs gives
the gradients of the same blocks differentiated plainly, on TensorFlow and JAX."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.xdist_group("transformers")

ATTENTION = {"full": {}, "sliding_window": {"window": 2}, "axial": {"rows": 2},
             "lsh": {"bucket_size": 4, "hash_rounds": 2}}  # fmt: skip
# JAX compiles each stack's gradient (slow): the plainest and the most involved attention.
ON_JAX = ("full", "lsh")

RUN_ON_JAX = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("test_reversible", {__file__!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(module.worst_differences(sys.argv[1:])))
"""


def worst_differences(attentions) -> dict:
    """For each attention, the worst difference between the gradients of
    `mean(stack(x)^2)` (input and every weight, 3 causal blocks, with padding) computed
    with and without the custom gradient, in units of np.allclose's float32 tolerance
    `1e-5 + 1e-5 |g|`: at most 1 means equal within it."""
    import keras
    from kplug_transformers.reversible_stack import ReversibleStack

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 16)).astype("float32")
    mask = np.ones((2, 8), "float32")
    mask[1, 6:] = 0
    worst = {}
    for attention in attentions:
        kwargs = {"attention": attention, "attention_options": ATTENTION[attention],
                  "causal": True}  # fmt: skip
        reversible = ReversibleStack(3, 2, 32, **kwargs)
        plain = ReversibleStack(3, 2, 32, recompute=False, **kwargs)
        reversible.build(x.shape)
        plain.build(x.shape)
        plain.set_weights(reversible.get_weights())
        got, expected = (_gradients(stack, x, mask) for stack in (reversible, plain))
        assert len(got) == len(expected) == 1 + len(plain.trainable_variables)
        assert max(float(np.abs(g).max()) for g in expected) > 1e-2  # not trivially zero
        worst[attention] = max(float((np.abs(a - b) / (1e-5 + 1e-5 * np.abs(b))).max())
                               for a, b in zip(got, expected, strict=True))  # fmt: skip
    return {"backend": keras.backend.backend(), "worst": worst}


def _gradients(stack, x, mask) -> list:
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_mean(stack(inputs, padding_mask=mask) ** 2)
        return [np.asarray(g) for g in tape.gradient(loss, [inputs, *stack.trainable_variables])]
    import jax

    def loss(weights, inputs):
        outputs, _ = stack.stateless_call(weights, [], inputs, padding_mask=mask)
        return (outputs**2).mean()

    weights = [variable.value for variable in stack.trainable_variables]
    dweights, dx = jax.jit(jax.grad(loss, argnums=(0, 1)))(weights, x)
    return [np.asarray(dx), *map(np.asarray, dweights)]


def test_recomputed_gradients_equal_plain_ones_on_tensorflow():
    result = worst_differences(ATTENTION)
    assert result["backend"] == "tensorflow"
    assert max(result["worst"].values()) <= 1.0, result


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="pip install 'jax[cpu]'")
def test_recomputed_gradients_equal_plain_ones_on_jax():
    command = [sys.executable, "-c", RUN_ON_JAX, *ON_JAX]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and set(result["worst"]) == set(ON_JAX)
    assert max(result["worst"].values()) <= 1.0, result


def test_reversible_stack_saves_and_loads(tmp_path):
    import keras
    from kplug_transformers.reversible_stack import ReversibleStack

    inputs = keras.Input((8, 16))
    stack = ReversibleStack(2, 2, 32, attention="lsh", attention_options={"bucket_size": 4})
    model = keras.Model(inputs, stack(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(1).normal(size=(2, 8, 16)).astype("float32")
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)
    assert loaded.layers[1].get_config()["recompute"] is True
