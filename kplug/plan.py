"""`kplug plan`: what a recipe will do, from cheap estimates or (`--build`) for real."""

from __future__ import annotations

from typing import Any

from kplug import splits
from kplug.recipe import Recipe
from kplug.registry import Registry

# Optimizer state per parameter, in copies of the weights.
OPTIMIZER_SLOTS = {
    "adam": 2, "adamw": 2, "nadam": 2, "adamax": 2, "lamb": 2, "adadelta": 2, "ftrl": 2,
    "rmsprop": 1, "adagrad": 1, "lion": 1, "muon": 1, "adafactor": 1, "sgd": 0,
}  # fmt: skip


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
    if build:
        facts.update(_built_facts(recipe, registry))
    else:
        for key in ("data", "strategy", "model"):
            section = recipe.sections[key]
            component = registry.get(section.kind, section.name)
            if component.estimate is not None:
                facts.update(component.estimate(section.config, dict(facts)) or {})
        _apply_data_options(recipe, facts)
    return {"name": recipe.name, "components": components, **_derived(recipe, facts)}


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
    }


def _size(variable: Any) -> int:
    n = 1
    for dim in variable.shape:
        n *= int(dim)
    return n


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
    params = facts.get("parameters")
    if params:
        slots = OPTIMIZER_SLOTS.get(recipe.optimizer.name, 2)
        if recipe.optimizer.name == "sgd" and recipe.optimizer.momentum:
            slots = 1
        copies = 1 + slots + 1  # weights, optimizer state, gradients
        if recipe.train.gradient_accumulation_steps > 1:
            copies += 1
        out["memory_estimate_mib"] = round(params * 4 * copies / 2**20, 2)
        out["memory_estimate_note"] = (
            f"float32 weights + {slots} optimizer slot(s) + gradients"
            + (" + accumulators" if recipe.train.gradient_accumulation_steps > 1 else "")
            + "; activations not included"
        )
    return out
