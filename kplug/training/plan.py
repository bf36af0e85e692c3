"""`kplug plan`: what a recipe will do, from cheap estimates or (`--build`) for real."""

from __future__ import annotations

from typing import Any

from kplug.data import splits
from kplug.recipe import Recipe
from kplug.registry import Registry

# Optimizer state per parameter, in copies of the weights.
OPTIMIZER_SLOTS = {
    "adam": 2, "adamw": 2, "nadam": 2, "adamax": 2, "lamb": 2, "adadelta": 2, "ftrl": 2,
    "rmsprop": 1, "adagrad": 1, "lion": 1, "muon": 1, "adafactor": 1, "sgd": 0,
}  # fmt: skip

# Peak RSS of a process that imports TensorFlow and Keras and fits a tiny model: the
# framework's own memory, a measured constant of this version (docs/after_training.md gives
# the command). An architecture whose library adds to it says so in its estimate's
# `framework_baseline_mib`. Everything else in the estimate is added to it.
FRAMEWORK_BASELINE_MIB = 730
FLOAT_BYTES = 4


def plan(recipe: Recipe, *, build: bool = False, registry: Registry | None = None) -> dict:
    """Resolved components, sizes, steps and memory of a recipe.

    Without `build`, only the components' `estimate` functions are used (no TensorFlow
    import); with it, the data is loaded and the model built for exact figures.
    """
    if registry is None:
        from kplug.plugins import registry as loaded

        registry = loaded()
    components = []
    sections = [*recipe.sections.values(), *(s for v in recipe.lists.values() for s in v),
                *recipe.plugin_sections.values()]  # fmt: skip
    for section in sections:
        component = registry.get(section.kind, section.name)
        components.append(
            {"section": section.path, "kind": section.kind, "name": section.name,
             "plugin": component.plugin}
        )  # fmt: skip
    facts: dict[str, Any] = {}
    for key in ("data", "strategy", "model"):  # the components' own cheap estimates
        section = recipe.sections[key]
        component = registry.get(section.kind, section.name)
        if component.estimate is not None:
            facts.update(component.estimate(section.config, dict(facts)) or {})
    if build:
        baseline = {k: v for k, v in facts.items() if k.startswith("framework_baseline")}
        facts = {**baseline, **_built_facts(recipe, registry)}
    else:
        _apply_data_options(recipe, facts)
        facts.update(_formula_activations(recipe, facts))
    return {"name": recipe.name, "components": components, **_derived(recipe, facts)}


def _formula_activations(recipe: Recipe, facts: dict[str, Any]) -> dict[str, Any]:
    """Activation floats per example of a new transformer, from its architecture: per block
    the q/k/v/output projections, the feed-forward layer and the attention scores (heads x
    T x T, before and after softmax). Other models: only `--build` sees their layers."""
    config = recipe.sections["model"].config
    length = _sequence_length(recipe)
    needed = ("layers", "heads", "hidden", "intermediate")
    if getattr(config, "preset", None) or not length or not all(hasattr(config, n) for n in needed):
        return {}
    per_block = _transformer_block_floats(length, config.hidden, config.intermediate, config.heads)
    return {"activation_floats_per_example": config.layers * per_block + length * config.hidden}


def _transformer_block_floats(length: int, hidden: int, intermediate: int, heads: int) -> int:
    return length * (6 * hidden + 2 * intermediate) + 2 * heads * length * length


def _apply_data_options(recipe: Recipe, facts: dict[str, Any]) -> None:
    options = recipe.data.options
    train = facts.get("train_examples")
    if train is not None and options.validation_split:
        held = int(round(train * options.validation_split))
        facts["train_examples"], facts["validation_examples"] = train - held, held
    if options.limit:
        for key in ("train_examples", "validation_examples", "test_examples"):
            if facts.get(key) is not None:
                facts[key] = min(facts[key], options.limit)


def _built_facts(recipe: Recipe, registry: Registry) -> dict[str, Any]:
    from kplug.stages import build_network, prepare_data, set_up

    ctx = set_up(recipe, registry)
    with ctx.strategy.scope():
        objective = prepare_data(ctx)
        model = objective.build(build_network(ctx), ctx)
    spec = ctx.data.spec
    return {
        "train_examples": splits.count(ctx.data.train),
        "validation_examples": splits.count(ctx.data.validation),
        "test_examples": splits.count(ctx.data.test),
        "input_shape": list(spec.input_shape) if spec.input_shape else None,
        "num_classes": spec.num_classes,
        "parameters": int(model.count_params()),
        "trainable_parameters": int(sum(int(_size(w)) for w in model.trainable_weights)),
        "replicas": ctx.strategy.num_replicas,
        "activation_floats_per_example": _built_activations(model, _sequence_length(recipe)),
        "data_bytes": _array_bytes((ctx.data.train, ctx.data.validation, ctx.data.test)),
    }


def _sequence_length(recipe: Recipe) -> int | None:
    objective = recipe.sections.get("objective")
    return getattr(objective.config, "sequence_length", None) if objective else None


def _built_activations(model: Any, length: int | None) -> int:
    """Floats per example in the outputs of every layer (nested models included; a free
    sequence axis counts as the objective's `length`); a transformer block (a layer with
    `num_heads` and `intermediate_dim`) adds what it keeps inside: projections,
    feed-forward and attention scores."""
    total = 0
    for layer in _layers(model):
        try:
            shape = tuple(length if d is None else d for d in tuple(layer.output.shape)[1:])
        except (AttributeError, ValueError, TypeError):  # called more than once, or never
            continue
        if not shape or any(d is None for d in shape):
            continue
        total += _product(shape)
        heads, inner = getattr(layer, "num_heads", None), getattr(layer, "intermediate_dim", None)
        if heads and inner and len(shape) == 2:
            total += _transformer_block_floats(shape[0], shape[1], inner, heads)
    return total


def _layers(model: Any) -> list[Any]:
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        if getattr(layer, "layers", None):
            found.extend(_layers(layer))
    return found


def _array_bytes(value: Any) -> int:
    """Bytes of the NumPy arrays a dataset holds in memory (a streamed one: 0)."""
    if hasattr(value, "nbytes") and hasattr(value, "dtype"):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(_array_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_array_bytes(v) for v in value.values())
    return 0


def _product(shape: Any) -> int:
    n = 1
    for dim in shape:
        n *= int(dim)
    return n


def _size(variable: Any) -> int:
    return _product(variable.shape)


def _derived(recipe: Recipe, facts: dict[str, Any]) -> dict[str, Any]:
    batch = recipe.data.options.batch_size
    replicas = int(facts.get("replicas") or 1)
    train = facts.get("train_examples")
    steps = recipe.train.steps_per_epoch or (-(-train // batch) if train else None)
    out: dict[str, Any] = dict(facts)
    out.update(
        global_batch=batch,
        replicas=replicas,
        per_replica_batch=batch / replicas if batch % replicas else batch // replicas,
        steps_per_epoch=steps,
        epochs=recipe.train.epochs,
        total_steps=steps * recipe.train.epochs if steps else None,
    )
    out.update(_memory(recipe, facts))
    return out


def _memory(recipe: Recipe, facts: dict[str, Any]) -> dict[str, Any]:
    """Peak memory of a training process, in MiB, by part; each part says how it is known."""
    parts: dict[str, Any] = {
        "framework": facts.get("framework_baseline_mib", FRAMEWORK_BASELINE_MIB)
    }
    what = facts.get("framework_baseline_note", "TensorFlow+Keras")
    notes = [f"framework: measured peak RSS of {what} on this version"]
    params = facts.get("parameters")
    if params:
        slots = OPTIMIZER_SLOTS.get(recipe.optimizer.name, 2)
        if recipe.optimizer.name == "sgd" and recipe.optimizer.momentum:
            slots = 1
        accumulates = recipe.train.gradient_accumulation_steps > 1
        copies = 1 + 1 + slots + int(accumulates)  # weights, gradients, slots, accumulators
        parts["weights_gradients_optimizer"] = _mib(params * FLOAT_BYTES * copies)
        notes.append(f"weights_gradients_optimizer: exact, float32 weights + gradients + "
                     f"{slots} {recipe.optimizer.name} slot(s)"
                     + (" + accumulators" if accumulates else ""))  # fmt: skip
        if getattr(recipe.sections["model"].config, "preset", None):
            # A preset's whole weights file is read before it is assigned.
            parts["preset_weights_read"] = _mib(params * FLOAT_BYTES)
            notes.append("preset_weights_read: estimate, one float32 copy while loading")
    else:
        notes.append("weights_gradients_optimizer: unknown (parameters unknown without --build)")
    floats = facts.get("activation_floats_per_example")
    if floats:
        batch = recipe.data.options.batch_size
        # Forward outputs are kept for the backward pass, which makes a gradient of each.
        parts["activations"] = _mib(2 * floats * batch * FLOAT_BYTES)
        source = "built model's layers" if "data_bytes" in facts else "formula"
        notes.append(f"activations: estimate, 2 x float32 layer outputs x batch ({source})")
    else:
        notes.append("activations: unknown without --build")
    data = facts.get("data_bytes")
    if data is None and facts.get("input_shape") and facts.get("train_examples"):
        examples = sum(facts.get(k) or 0 for k in
                       ("train_examples", "validation_examples", "test_examples"))  # fmt: skip
        data = examples * _product(facts["input_shape"]) * FLOAT_BYTES
    if data:
        parts["data"] = _mib(data)
        notes.append("data: " + ("exact, arrays held in memory" if "data_bytes" in facts
                                 else "estimate, float32 inputs of every split"))  # fmt: skip
    return {"memory_estimate_mib": round(sum(parts.values()), 1),
            "memory_parts_mib": parts, "memory_estimate_note": "; ".join(notes)}  # fmt: skip


def _mib(n: float) -> float:
    return round(n / 2**20, 1)
