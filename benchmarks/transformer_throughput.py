"""Training tokens per second of the gpt2 recipe's model through kplug and through plain
keras-hub code, side by side in one process.

    .venv/bin/python benchmarks/transformer_throughput.py [--steps 40] [--repeats 2]

Both train the model of recipes/gpt_clm_pydoc.yaml (GPT2Backbone, tied output
embedding, softmax) for the same number of steps of the same batches (the recipe's
100-character windows of the pydoc corpus, unshuffled, batch 64) with the same optimizer
(AdamW, constant learning rate) and no validation. kplug's figure is its run's
`train_seconds` (Keras `fit` from start to end); the plain figure times `fit` the same
way. The two alternate `--repeats` times; the script prints each round's ratio, their
median, and the ratio of the best of each. `--steps` may not exceed one epoch of full
batches (49 here), so both see the same batches and neither pays for an epoch boundary.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "gpt_clm_pydoc.yaml"


def overrides(steps: int) -> list[str]:
    return [f"train.steps_per_epoch={steps}", "train.epochs=1", "data.validation_fraction=0",
            "data.shuffle=false", "optimizer.schedule.name=constant",
            "optimizer.schedule.warmup_steps=0", "train.jit_compile=false",
            "train.verbose=0"]  # fmt: skip


def kplug_tokens_per_second(steps: int, runs: Path) -> float:
    from kplug import load_recipe
    from kplug.runner import run

    recipe = load_recipe(RECIPE, overrides(steps))
    result = run(recipe, runs_root=runs, argv=["benchmark"])
    tokens = steps * recipe.data.options.batch_size * recipe.objective.config.sequence_length
    return tokens / result.metrics["train_seconds"]


def the_data(steps: int):
    """The recipe's training windows, through kplug's own data stage (same batches)."""
    from kplug import load_recipe
    from kplug.context import RunContext
    from kplug.plugins import registry
    from kplug.runner import load_data

    recipe = load_recipe(RECIPE, [*overrides(steps), "data.stream=false"])  # arrays in memory
    ctx = RunContext(recipe, registry())
    ctx.data = load_data(ctx)
    data = ctx.build(recipe.objective).adapt(ctx.data, ctx)
    return recipe, data.train, data.spec.vocabulary_size


def plain_tokens_per_second(recipe, train, vocabulary_size: int, steps: int) -> float:
    import keras
    import keras_hub

    m, o = recipe.model.config, recipe.optimizer
    keras.utils.set_random_seed(recipe.seed)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary_size, num_layers=m.layers, num_heads=m.heads,
        hidden_dim=m.hidden, intermediate_dim=m.intermediate, dropout=m.dropout,
        max_sequence_length=m.max_length,
    )  # fmt: skip
    token_ids = keras.Input(shape=(None,), dtype="int32")
    x = backbone({"token_ids": token_ids, "padding_mask": keras.ops.ones_like(token_ids)})
    logits = backbone.token_embedding(x, reverse=True)
    model = keras.Model(token_ids, keras.layers.Activation("softmax", dtype="float32")(logits))
    optimizer = keras.optimizers.AdamW(
        o.learning_rate, weight_decay=o.weight_decay, global_clipnorm=o.global_clipnorm
    )
    optimizer.exclude_from_weight_decay(var_names=list(o.exclude_from_weight_decay))
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=False)  # fmt: skip
    import tensorflow as tf

    batch = recipe.data.options.batch_size
    dataset = (
        tf.data.Dataset.from_tensor_slices(train).batch(batch).repeat().prefetch(tf.data.AUTOTUNE)
    )
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - start
    return steps * batch * recipe.objective.config.sequence_length / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="throughput_"))
    recipe, train, vocabulary = the_data(args.steps)
    full_batches = len(train[0]) // recipe.data.options.batch_size
    if args.steps > full_batches:
        parser.error(f"--steps {args.steps} is more than one epoch ({full_batches} full batches)")
    results: dict[str, list[float]] = {"kplug": [], "plain keras-hub": []}
    for repeat in range(args.repeats):
        results["kplug"].append(kplug_tokens_per_second(args.steps, runs))
        results["plain keras-hub"].append(
            plain_tokens_per_second(recipe, train, vocabulary, args.steps)
        )
        print(f"repeat {repeat + 1}: kplug {results['kplug'][-1]:,.0f} tokens/s, plain "
              f"{results['plain keras-hub'][-1]:,.0f} tokens/s", flush=True)  # fmt: skip
    kplug, plain = max(results["kplug"]), max(results["plain keras-hub"])
    ratios = [k / p for k, p in zip(results["kplug"], results["plain keras-hub"], strict=True)]
    print("per-round ratios " + ", ".join(f"{r:.3f}" for r in ratios)
          + f"; median {statistics.median(ratios):.3f}")  # fmt: skip
    print(f"best of {args.repeats}: kplug {kplug:,.0f} tokens/s, plain keras-hub "
          f"{plain:,.0f} tokens/s, ratio {kplug / plain:.3f} "
          f"({args.steps} steps of {recipe.data.options.batch_size} x "
          f"{recipe.objective.config.sequence_length} tokens)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
