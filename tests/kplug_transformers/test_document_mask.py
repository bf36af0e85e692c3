"""`causal_lm: {document_mask: true}` on gpt2: no token of a packed window attends across
an end-of-text token."""

from __future__ import annotations

import numpy as np
import pytest

import kplug
from kplug import testing
from kplug.context import RunContext
from kplug.plugins import registry

END = 2  # the byte tokenizer's end-of-text id
MODEL = {"name": "gpt2", "layers": 2, "heads": 2, "hidden": 16, "intermediate": 32,
         "max_length": 16, "dropout": 0.0}  # fmt: skip


def gpt2(document_mask: bool, **model):
    from kplug_transformers.gpt2 import GPT2Config, build_gpt2

    recipe = testing.recipe({"data": {"name": "pydoc_corpus"}, "model": {**MODEL, **model},
                             "objective": {"name": "causal_lm",
                                           "document_mask": document_mask}})  # fmt: skip
    ctx = RunContext(recipe, registry())
    tokenizer = ctx.build_nested("tokenizer", {"name": "byte"})
    spec = kplug.DataSpec(input_shape=(16,), vocabulary_size=259, input_dtype="int32",
                          extras={"tokenizer": tokenizer})  # fmt: skip
    ctx.data = kplug.Data(None, spec=spec)
    config = GPT2Config(**{k: v for k, v in {**MODEL, **model}.items() if k != "name"})
    return build_gpt2(config, ctx), ctx


def test_the_second_document_does_not_see_the_first():
    import keras

    keras.utils.set_random_seed(0)
    model, ctx = gpt2(document_mask=True)
    assert ctx.build(ctx.recipe.objective).build(model, ctx) is model
    rng = np.random.default_rng(0)
    first = rng.integers(3, 259, size=(2, 16)).astype("int32")
    other = first.copy()
    other[:, :6] = rng.integers(3, 259, size=(2, 6))  # another first document ...
    first[:, 6] = other[:, 6] = END  # ... closed at position 6; the second one follows
    a, b = model.predict_on_batch(first), model.predict_on_batch(other)
    np.testing.assert_allclose(a[:, 7:], b[:, 7:], atol=1e-6)
    assert not np.allclose(a[:, :7], b[:, :7])
    unmasked, _ = gpt2(document_mask=False)
    unmasked.set_weights(model.get_weights())
    assert not np.allclose(unmasked.predict_on_batch(first)[:, 7:],
                           unmasked.predict_on_batch(other)[:, 7:])  # fmt: skip


def test_an_architecture_that_cannot_mask_by_document_is_refused():
    with pytest.raises(kplug.RecipeError, match="document_mask"):
        gpt2(document_mask=True, attention="sliding_window", window=4)
