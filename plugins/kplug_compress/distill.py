"""`distill`: knowledge distillation with `keras.distillation.Distiller`.

The recipe's model is the student; the teacher is a saved model (`teacher:` a .keras
file, a run directory, or runs/<name> for its newest completed run). The student learns
from the labels (weight `student_loss_weight`) and from the teacher's temperature-softened
logits (`LogitsDistillation`), optionally also from named intermediate layers
(`FeatureDistillation`). Models ending in a softmax are distilled on the softmax' inputs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveFloat

import kplug
from kplug.initialize import resolve_init_path
from kplug_compress.measure import count_parameters, evaluate
from kplug_compress.step import (
    CompressionStep,
    FineTuneConfig,
    compile_keras,
    fine_tune,
    keras_loss,
    require_keras_model,
    with_learning_rate,
)


class FeaturePair(kplug.Config):
    teacher: str = Field(..., description="teacher layer name")
    student: str = Field(..., description="student layer name (same output shape)")
    loss: Literal["mse", "mae", "cosine_similarity"] = "mse"
    weight: PositiveFloat = 1.0


class DistillConfig(FineTuneConfig):
    teacher: str = Field(
        ...,
        description="the teacher: a .keras file, a run directory, or runs/<name> (its "
        "newest completed run)",
    )
    temperature: PositiveFloat = Field(3.0, description="softens both models' logits")
    student_loss_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="weight of the label loss; the distillation losses get 1 minus it",
    )
    logits_weight: PositiveFloat = Field(1.0, description="weight of the logits distillation")
    features: list[FeaturePair] = Field([], description="feature distillation between layers")
    compare_with_student_alone: bool = Field(
        False,
        description="also train a copy of the student from the same initial weights "
        "on the labels alone, for the same steps, and report both",
    )


class Distill(CompressionStep):
    """Trains the recipe's model (the student) to imitate a larger teacher."""

    name = "distill"

    def compress(self, model: Any, ctx: kplug.RunContext) -> tuple[Any, dict[str, Any]]:
        from kplug.models import load_model

        require_keras_model(model, self.name)
        config = self.config
        teacher_path = resolve_teacher(config.teacher)
        teacher = load_model(teacher_path, trust=ctx.trust_model, compile=False)
        details: dict[str, Any] = {
            "teacher": str(teacher_path),
            "teacher_parameters": count_parameters(teacher)[0],
            "student_parameters": count_parameters(model)[0],
            "teacher_test": self._teacher_metrics(teacher, ctx),
        }
        initial_weights = model.get_weights()
        distiller = self._distiller(teacher, model, ctx)
        fine_tune(distiller, config, ctx)
        if config.compare_with_student_alone:
            details["student_alone_test"] = self._student_alone(model, initial_weights, ctx)
        return model, details

    def _distiller(self, teacher: Any, student: Any, ctx: kplug.RunContext) -> Any:
        import keras

        config = self.config
        teacher_logits, _ = logits_model(teacher)
        student_logits, stripped = logits_model(student)
        losses = [logits_distillation(config.temperature)]
        losses += [
            keras.distillation.FeatureDistillation(
                loss=pair.loss, teacher_layer_name=pair.teacher, student_layer_name=pair.student
            )
            for pair in config.features
        ]
        try:
            distiller = keras.distillation.Distiller(
                teacher=teacher_logits,
                student=student_logits,
                distillation_losses=losses,
                distillation_loss_weights=[config.logits_weight]
                + [pair.weight for pair in config.features],
                student_loss_weight=config.student_loss_weight,
            )
        except ValueError as error:
            raise kplug.KplugError(f"distill: teacher and student do not fit: {error}") from None
        objective = ctx.build(ctx.recipe.objective)
        distiller.compile(
            optimizer=with_learning_rate(ctx, config.learning_rate).make_optimizer(),
            loss=_on_logits(keras_loss(ctx)) if stripped else keras_loss(ctx),
            metrics=objective.metrics(ctx),
        )
        return distiller

    def _teacher_metrics(self, teacher: Any, ctx: kplug.RunContext) -> dict[str, float]:
        compile_keras(teacher, ctx, None)
        return evaluate(teacher, ctx)

    def _student_alone(self, student: Any, weights: list[Any], ctx: kplug.RunContext) -> dict:
        import keras

        alone = keras.models.clone_model(student)
        alone.set_weights(weights)
        compile_keras(alone, ctx, self.config.learning_rate)
        fine_tune(alone, self.config, ctx)
        return evaluate(alone, ctx)


def logits_distillation(temperature: float) -> Any:
    """Keras' LogitsDistillation with its KL divergence working as documented.

    Its default `loss="kl_divergence"` resolves to the loss function, not the
    `KLDivergence` class that LogitsDistillation checks for, so Keras 3.15.1 skips the
    temperature softmax and the T^2 scaling and takes the KL divergence of raw logits
    (negative losses; the student does not learn). A `KLDivergence` instance takes the
    intended path.
    """
    import keras

    return keras.distillation.LogitsDistillation(
        temperature=temperature, loss=keras.losses.KLDivergence()
    )


def resolve_teacher(value: str) -> Any:
    """The teacher's model file (raises a KplugError naming the fix when missing)."""
    return resolve_init_path(value, key="distill: teacher")


def logits_model(model: Any) -> tuple[Any, bool]:
    """A model sharing `model`'s layers that outputs logits, and whether it differs from
    `model`: a final softmax layer is left out; a softmax inside the last layer (Dense
    with activation="softmax") is undone by a log, which gives the logits up to a constant
    that softmax ignores."""
    import keras

    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        raise kplug.KplugError(
            f"distill needs functional models with one output; {model.name} "
            f"({type(model).__name__}) is not one."
        )
    last = outputs[0]._keras_history[0]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if type(last).__name__ == "Softmax" or (
        type(last).__name__ == "Activation" and activation == "softmax"
    ):
        return keras.Model(model.inputs, last.input, name=f"{model.name}_logits"), True
    if activation == "softmax":
        log_probabilities = keras.ops.log(keras.ops.clip(outputs[0], 1e-7, 1.0))
        return keras.Model(model.inputs, log_probabilities, name=f"{model.name}_logits"), True
    return model, False


def _on_logits(loss: Any) -> Any:
    """The same loss taking logits instead of probabilities."""
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    if "from_logits" not in config:
        raise kplug.KplugError(
            f"distill: the objective's loss ({type(loss).__name__}) has no from_logits "
            "option, so it cannot be applied to the student's logits; use a classification "
            "objective."
        )
    return type(loss).from_config({**config, "from_logits": True})
