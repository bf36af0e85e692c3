"""Using a finished run: predictions on new inputs (`kplug predict`) and the run's metrics
on other data (`kplug evaluate`), both preprocessed exactly as in training.

Predict: the dataset's plugin reads the inputs (hook `prediction_inputs`), the run's
objective adapts them as it adapted training data (packing, sequence length), the model
scores them; objectives whose outputs are not class scores answer `prediction_rows`.
Evaluate: the run's recipe with data overrides, its preprocessing and sequence lengths pinned,
is loaded and adapted like a training run, and the model is compiled with the run's own
loss and metrics.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np

from kplug.context import RunContext
from kplug.data import splits as split_tools
from kplug.errors import DataError, RunError
from kplug.inference import finished_run, read_inference
from kplug.recipe import Recipe

log = logging.getLogger("kplug")
SPLITS = ("train", "validation", "test")


def run_recipe(run_dir: Path, overrides: list[str] = ()) -> Recipe:
    from kplug.stages import load_recipe

    return load_recipe(run_dir / "recipe.resolved.yaml", list(overrides))


def predict(
    run_dir: str | Path,
    *,
    paths: list[str] = (),
    texts: list[str] = (),
    pairs: list[str] = (),
    top_k: int = 3,
    options: dict[str, Any] | None = None,
    trust_model: bool = False,
) -> list[dict[str, Any]]:
    """One output row per input: `input`, `class`, `probability`, `top_k` (classifiers), or
    what the objective's `prediction_rows` hook gives (generated text)."""
    from kplug.plugins import plugin_manager, registry
    from kplug.stages import use_backend
    from kplug.training.models import load_model

    run_dir = finished_run(run_dir, "kplug predict")
    inference = read_inference(run_dir)
    recipe = run_recipe(run_dir, pinned_overrides(run_recipe(run_dir), inference, run_dir))
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise DataError(f"kplug predict: input {missing[0]} does not exist (cwd {Path.cwd()}).")
    if not paths and not texts:
        raise DataError('kplug predict needs an INPUT file or folder, or --text "...".')
    if pairs and len(pairs) != len(texts):
        raise DataError(
            f"--pair was given {len(pairs)} times and --text {len(texts)} times; "
            "give one --pair per --text (the second text of each pair)."
        )
    use_backend(recipe.backend)
    hook = plugin_manager().hook
    ctx = RunContext(recipe, registry(), argv=["kplug", "predict"])
    inputs = hook.prediction_inputs(
        dataset=recipe.data.name,
        config=recipe.data.config,
        paths=[Path(p) for p in paths],
        texts=list(texts),
        pairs=list(pairs),
        run_dir=run_dir,
        inference=inference,
        ctx=ctx,
    )
    if inputs is None:
        raise RunError(
            f"dataset {recipe.data.name!r} cannot read prediction inputs: its plugin "
            "implements no `prediction_inputs` hook (docs/plugins.md); score new data with "
            "kplug evaluate RUN_DIR data.<key>=... instead."
        )
    names = list(inputs.report.get("inputs", []))
    if not names:
        raise DataError("kplug predict: the input holds no examples (an empty file?).")
    model = load_model(run_dir / "model.keras", trust=trust_model, compile=False)
    rows = hook.prediction_rows(
        objective=recipe.objective.name,
        config=recipe.objective.config,
        model=model,
        inputs=inputs,
        run_dir=run_dir,
        options=dict(options or {}),
    )
    if rows is not None:
        return rows
    objective = ctx.build(recipe.objective)
    x = inputs.train[0]
    placeholder = np.zeros(len(names), np.int32)  # adapt() reads labels; predictions do not
    adapted = objective.adapt(inputs.replace(train=(x, placeholder)), ctx)
    scores = np.asarray(model.predict(adapted.train[0], verbose=0, batch_size=64))
    return class_rows(names, scores, inference.get("class_names"), top_k)


def class_rows(
    names: list[str], scores: np.ndarray, class_names: list[str] | None, top_k: int
) -> list[dict[str, Any]]:
    """The likeliest class, its probability and the top k of each row of scores."""
    if scores.ndim != 2 or scores.shape[1] < 2:
        return [{"input": n, "output": s.tolist()} for n, s in zip(names, scores, strict=True)]
    probabilities = as_probabilities(scores)
    labels = class_names or [str(i) for i in range(scores.shape[1])]
    rows = []
    for name, p in zip(names, probabilities, strict=True):
        order = np.argsort(-p)[: max(1, top_k)]
        rows.append(
            {
                "input": name,
                "class": labels[order[0]],
                "probability": round(float(p[order[0]]), 6),
                "top_k": [[labels[i], round(float(p[i]), 6)] for i in order],
            }
        )
    return rows


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """Scores as class probabilities: rows already in [0, 1] summing to 1 are softmax
    outputs; anything else is logits (a softmax of the objective's logits)."""
    scores = scores.astype(np.float64)
    if scores.min() >= 0 and scores.max() <= 1 and np.allclose(scores.sum(axis=1), 1, atol=1e-3):
        return scores
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def pinned_overrides(recipe: Recipe, inference: dict[str, Any], run_dir: Path) -> list[str]:
    """Overrides that make the data read like the run's training data: its sequence
    lengths, and what plugins pin through `evaluation_overrides` (the saved tokenizer)."""
    from kplug.plugins import each_result, plugin_manager

    out = [override for pins in each_result(plugin_manager(), "evaluation_overrides",
                                            recipe=recipe, inference=inference, run_dir=run_dir)
           for override in pins]  # fmt: skip
    data_shape = (inference.get("data") or {}).get("input_shape") or []
    if (
        (inference.get("data") or {}).get("text_form") == "padded"
        and data_shape
        and (getattr(recipe.data.config, "sequence_length", 0) is None)
    ):
        out.append(f"data.sequence_length={data_shape[0]}")
    length = inference.get("sequence_length")
    if length and getattr(recipe.objective.config, "sequence_length", 0) is None:
        out.append(f"objective.sequence_length={length}")
    return out


def evaluate(
    run_dir: str | Path,
    overrides: list[str] = (),
    *,
    split: str = "test",
    trust_model: bool = False,
    argv: list[str] | None = None,
) -> tuple[dict[str, Any], Path]:
    """The run's metrics on a split of its data, changed by `overrides` (`data.path=new.csv`);
    `split` is train, validation, test or all. Writes `evaluations/<UTC time>.json` into
    the run directory and returns (that record, its path)."""
    from kplug.plugins import registry
    from kplug.rundir import RunDirectory, utc_now
    from kplug.stages import load_data, use_backend
    from kplug.training.models import load_model

    run_dir = finished_run(run_dir, "kplug evaluate")
    inference = read_inference(run_dir)
    bad = [o for o in overrides if not o.lstrip("~").startswith("data.")]
    if bad:
        raise RunError(
            f"kplug evaluate changes only the data section (data.KEY=VALUE); got "
            f"{', '.join(bad)}. The model and objective are the run's own."
        )
    pins = pinned_overrides(run_recipe(run_dir), inference, run_dir)
    recipe = run_recipe(run_dir, [*pins, *overrides])
    use_backend(recipe.backend)
    ctx = RunContext(recipe, registry(), argv=list(argv or ["kplug", "evaluate"]))
    ctx.strategy = ctx.build(recipe.strategy)
    with ctx.strategy.scope():
        ctx.data = load_data(ctx)
        objective = ctx.build(recipe.objective)
        ctx.data = objective.adapt(ctx.data, ctx)
        model = load_model(run_dir / "model.keras", trust=trust_model, compile=False)
        ctx.model = model
        objective.compile(model, ctx)
    data = _split(ctx.data, split)
    examples = split_tools.count(data)
    if not examples:
        raise DataError(
            f"kplug evaluate: the {split} split of this data is empty; choose "
            "--split all, or change data.validation_fraction/test_fraction."
        )
    batch_size = recipe.data.options.batch_size
    metrics = ctx.strategy.evaluate(model, data, batch_size=batch_size)
    record = {
        "at": utc_now(),
        "run": str(run_dir),
        "split": split,
        "examples": examples,
        "overrides": list(overrides),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "data": recipe.data.to_dict(),
    }
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = RunDirectory(run_dir).write_json(f"evaluations/{stamp}.json", record)
    return record, path


def _split(data: Any, split: str) -> Any:
    if split != "all":
        return getattr(data, split)
    parts = [getattr(data, s) for s in SPLITS if split_tools.count(getattr(data, s))]
    if not parts:
        return None
    if not isinstance(parts[0], tuple):
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.concatenate(part)
        return joined
    xs, ys = [p[0] for p in parts], [p[1] for p in parts]
    if isinstance(xs[0], dict):
        x = {k: np.concatenate([part[k] for part in xs]) for k in xs[0]}
    else:
        x = np.concatenate(xs)
    return x, np.concatenate(ys)
