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

# Gradients of sum(stack(x)^2) with respect to x and every weight, with and without the
# custom gradient, for each attention; prints the worst difference relative to 1e-5 in
# float32 (np.allclose's rule: |a - b| <= 1e-5 + 1e-5 |b|). Run by both backends.
COMPARE = """
import json, sys
import keras, numpy as np
from kplug_transformers.reversible_stack import ReversibleStack
ATTENTION = json.loads(sys.argv[1])
backend = keras.backend.backend()
rng = np.random.default_rng(0)
x = rng.normal(size=(2, 8, 16)).astype("float32")
mask = np.ones((2, 8), "float32"); mask[1, 6:] = 0

def gradients(stack):
    if backend == "tensorflow":
        import tensorflow as tf
        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(stack(inputs, padding_mask=mask) ** 2)
        return [np.asarray(g) for g in tape.gradient(loss, [inputs, *stack.trainable_variables])]
    import jax
    def loss(weights, inputs):
        y, _ = stack.stateless_call(weights, [], inputs, padding_mask=mask)
        return (y ** 2).sum()
    weights = [v.value for v in stack.trainable_variables]
    dweights, dx = jax.jit(jax.grad(loss, argnums=(0, 1)))(weights, x)
    return [np.asarray(dx), *map(np.asarray, dweights)]

worst = {}
for attention, options in ATTENTION.items():
    kwargs = dict(attention=attention, attention_options=options, causal=True)
    reversible = ReversibleStack(3, 2, 32, **kwargs)
    plain = ReversibleStack(3, 2, 32, recompute=False, **kwargs)
    reversible.build(x.shape); plain.build(x.shape)
    plain.set_weights(reversible.get_weights())
    got, expected = gradients(reversible), gradients(plain)
    assert len(got) == len(expected) == 1 + len(plain.trainable_variables)
    worst[attention] = max(float((np.abs(a - b) / (1e-5 + 1e-5 * np.abs(b))).max())
                           for a, b in zip(got, expected))
    assert max(float(np.abs(b).max()) for b in expected) > 1.0  # not trivially zero
print(json.dumps({"backend": backend, "worst": worst}))
"""


def compare(backend: str) -> dict:
    done = subprocess.run([sys.executable, "-c", COMPARE, json.dumps(ATTENTION)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KERAS_BACKEND": backend})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_recomputed_gradients_equal_plain_ones_on_tensorflow():
    result = compare("tensorflow")
    assert result["backend"] == "tensorflow"
    assert set(result["worst"]) == set(ATTENTION)
    assert max(result["worst"].values()) <= 1.0, result


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="pip install 'jax[cpu]'")
def test_recomputed_gradients_equal_plain_ones_on_jax():
    result = compare("jax")
    assert result["backend"] == "jax"
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
