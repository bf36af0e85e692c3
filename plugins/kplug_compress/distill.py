"""`distill`: knowledge distillation with `keras.distillation.Distiller`.

The recipe's model is the student; the teacher is a saved model (`teacher:` a .keras
file, a run directory, or runs/<name> for its newest completed run). The student learns
from the labels (weight `student_loss_weight`) and from the teacher's temperature-softened
logits (`LogitsDistillation`), optionally also from named intermediate layers
(`FeatureDistillation`). Models ending in a softmax are distilled on the softmax' inputs.
With `augment:`, each training batch is randomly augmented once and that same view goes
to the teacher and to the student (and to the student-alone comparison's training).
"""

from __future__ import annotations

from typing import Any, Literal

from kplug_vision.augment import AugmentConfig
from pydantic import Field, PositiveFloat

import kplug
from kplug import resolve_init_path
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
    augment: AugmentConfig | None = Field(
        None,
        description="random image augmentation of the distillation batches (flip, "
        "rotation, zoom, translation, contrast as in the vision models' augment:); the "
        "teacher and the student see the same augmented view, so the teacher labels images "
        "the labels do not cover",
    )
    compare_with_student_alone: bool = Field(
        False,
        description="also train a copy of the student from the same initial weights "
        "on the labels alone, for the same steps, and report both",
    )


class Distill(CompressionStep):
    """Trains the recipe's model (the student) to imitate a larger teacher."""

    name = "distill"

    def compress(self, model: Any, ctx: kplug.RunContext) -> tuple[Any, dict[str, Any]]:
        from kplug import load_model

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
            distiller = augmented_distiller_class()(
                augmentation=augmentation(config.augment),
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
        trained = alone
        layers = augmentation(self.config.augment)
        if layers is not None:  # trains on the same augmentation, for a fair comparison
            inputs = keras.Input(shape=student.input_shape[1:], dtype=student.input.dtype)
            trained = keras.Model(inputs, alone(layers(inputs)), name=f"{alone.name}_augmented")
        compile_keras(trained, ctx, self.config.learning_rate)
        fine_tune(trained, self.config, ctx)
        if trained is not alone:  # evaluated without the augmentation layers
            compile_keras(alone, ctx, self.config.learning_rate)
        return evaluate(alone, ctx)


def augmentation(config: AugmentConfig | None) -> Any:
    """The augmentation layers of `config` as one Sequential, or None."""
    import keras

    layers = config.layers() if config is not None else []
    return keras.Sequential(layers, name="distill_augment") if layers else None


def augmented_distiller_class() -> type:
    """`keras.distillation.Distiller` that augments each training batch once, before both
    models see it (made on first use: importing Keras is deferred)."""
    import keras

    class AugmentedDistiller(keras.distillation.Distiller):
        def __init__(self, *, augmentation: Any = None, **kwargs: Any):
            super().__init__(**kwargs)
            self.augmentation = augmentation

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            if training and self.augmentation is not None:
                # Keras' train_step ran the student on the batch as given; the loss uses
                # the augmented view for both models (the first student output is unused).
                x = self.augmentation(x, training=True)
                y_pred = self.student(x, training=True)
            return super().compute_loss(x, y, y_pred, sample_weight, training)

    return AugmentedDistiller


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
    `model`: a final softmax layer is left out; a final Dense with a softmax activation is
    applied without it (its own kernel and bias, see `DenseLogits`)."""
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
        if not isinstance(last, keras.layers.Dense):
            raise kplug.KplugError(
                f"distill: the last layer of {model.name} ({type(last).__name__} "
                f"{last.name!r}) applies a softmax inside; end the model with a Dense or a "
                "separate softmax activation, or give it linear outputs (logits)."
            )
        logits = dense_logits_class()(last)(last.input)
        return keras.Model(model.inputs, logits, name=f"{model.name}_logits"), True
    return model, False


def dense_logits_class() -> type:
    """A layer computing a softmax Dense layer's logits with that layer's own weights.

    Taking the log of the softmax instead would clip: a confident model's small
    probabilities fall below any floor, which flattens the teacher's wrong-class scores
    (the "dark knowledge" distillation transfers) and stops the student's gradients there.
    """
    import keras

    class DenseLogits(keras.layers.Layer):
        def __init__(self, dense: Any, **kwargs: Any):
            super().__init__(name=f"{dense.name}_logits", dtype=dense.dtype_policy, **kwargs)
            self.dense = dense  # tracked: its kernel and bias are this layer's weights

        def call(self, x):
            y = keras.ops.matmul(x, self.dense.kernel)
            return keras.ops.add(y, self.dense.bias) if self.dense.use_bias else y

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], self.dense.units)

    return DenseLogits


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
