"""`adversarial`: trains a GAN architecture's generator against its discriminator.

The data's images are rescaled to [-1, 1] (the generator's tanh range) and their labels
dropped for training; the labelled images stay with the objective for the scorer
(`kplug_gan.quality`). The discriminator uses the recipe's `optimizer:`, the generator a
second, fresh optimizer from the same section (`generator_learning_rate` may change its
rate). Each epoch `SampleQuality` writes a grid of samples from fixed noise and puts the
scorer's figures into the logs, hence metrics.csv.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

import kplug
from kplug_gan.gan import ADVERSARIAL_STATE

SPLITS = ("train", "validation", "test")
SCORER_FILE = "scorer.keras"
# Fixed, so that the in-process scorer (hence the score) does not change with the GAN's
# own data.batch_size.
SCORER_BATCH = 64


class AdversarialConfig(kplug.Config):
    generator_learning_rate: PositiveFloat | None = Field(
        None, description="the generator optimizer's rate; null: optimizer.learning_rate"
    )
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=0.5, description="the discriminator's target for real images is 1 - this"
    )
    pixel_max: PositiveFloat | None = Field(
        None, description="the data's white level; null: 255 for uint8 data or arrays above 1, "
        "else 1"
    )  # fmt: skip
    generator_ema: float = Field(
        0.0, ge=0.0, lt=1.0, description="momentum of a moving average of the generator's "
        "weights (updated each step) that draws the grids, the scored and the saved samples; "
        "0: none, the current weights"
    )  # fmt: skip
    grid_samples: PositiveInt = Field(
        64, le=1024, description="samples in each epoch's grid (samples/epoch_NNN.png)"
    )
    score_samples: NonNegativeInt = Field(
        1000, description="samples the scorer judges each epoch; 0: no score"
    )
    scorer: str | None = Field(
        None,
        description="a classifier run directory, runs/<name> or .keras file that scores the "
        "samples; null: train the cnn of recipes/mnist_cnn.yaml on the labelled training "
        "split first",
    )
    scorer_epochs: PositiveInt = Field(8, description="epochs of the in-process scorer")


class Adversarial(kplug.Objective):
    """Discriminator and generator losses (binary cross-entropy), two optimizers."""

    monitor = "sample_confidence"
    mode = "max"

    def __init__(self, config: AdversarialConfig, ctx: kplug.RunContext):
        self.config = config
        self.labelled: dict[str, Any] = {}
        self.num_classes: int | None = None
        self.image_shape: tuple[int, ...] = ()
        self._scorer: Any = None

    # === Data ===

    def adapt(self, data: kplug.Data, ctx: kplug.RunContext) -> kplug.Data:
        spec = data.spec
        shape = spec.input_shape
        if shape is None or len(shape) not in (2, 3):
            raise kplug.DataError(
                f"objective adversarial trains on images of shape (height, width[, channels]); "
                f"dataset {ctx.recipe.data.name!r} gives inputs of shape {shape}. Use an image "
                "dataset such as mnist."
            )
        ctx.state[ADVERSARIAL_STATE] = True
        shape = tuple(shape) if len(shape) == 3 else (*shape, 1)
        pixel_max = self.config.pixel_max or _white_level(data.train)
        self.num_classes = spec.num_classes
        self.labelled = {s: _scaled(getattr(data, s), 1.0 / pixel_max, 0.0, labels=True)
                         for s in ("train", "test")}  # fmt: skip
        images = {s: _scaled(getattr(data, s), 2.0 / pixel_max, -1.0, labels=False)
                  for s in SPLITS}  # fmt: skip
        if self.config.scorer:
            from kplug import resolve_init_path

            # Checked now, loaded with the first use: loading builds layers, which would draw
            # from the global seed before the GAN is built and change its initial weights.
            resolve_init_path(self.config.scorer, key="objective.scorer")
        self.image_shape = shape
        new_spec = kplug.DataSpec(
            input_shape=shape,
            num_classes=spec.num_classes,
            class_names=spec.class_names,
            extras={**spec.extras, "task": "adversarial"},
        )
        report = {**data.report, "adversarial": {"pixel_max": pixel_max, "range": [-1, 1]}}
        return data.replace(**images, spec=new_spec, report=report)

    # === Model ===

    def build(self, network: Any, ctx: kplug.RunContext) -> Any:
        if not (isinstance(network, dict) and {"generator", "discriminator"} <= set(network)):
            raise kplug.RecipeError(
                f"objective adversarial needs a GAN architecture that builds a generator and a "
                f"discriminator (gan, dcgan); model {ctx.recipe.model.name!r} builds "
                f"{type(network).__name__}."
            )
        from kplug_gan.gan_model import GAN

        return GAN(network["generator"], network["discriminator"],
                   label_smoothing=self.config.label_smoothing,
                   generator_ema=self.config.generator_ema, name="gan")  # fmt: skip

    def compile(self, model: Any, ctx: kplug.RunContext) -> None:
        rate = self.config.generator_learning_rate
        model.compile(
            d_optimizer=ctx.make_optimizer(),
            g_optimizer=ctx.make_optimizer(**({"learning_rate": rate} if rate else {})),
            jit_compile=ctx.recipe.train.jit_compile,
        )

    # === Samples and their score ===

    def callbacks(self, ctx: kplug.RunContext) -> list[Any]:
        from kplug_gan.sample_quality import SampleQuality

        grid, scored = self.noise(ctx)
        chief = ctx.strategy is None or ctx.strategy.is_chief
        directory = ctx.directory.path if chief and ctx.directory is not None else None
        return [SampleQuality(grid, scored, scorer=self.scorer(ctx), directory=directory)]

    def noise(self, ctx: kplug.RunContext) -> tuple[np.ndarray, np.ndarray]:
        """The fixed noise of the epoch grids and of the scored samples (from the seed)."""
        latent = int(ctx.model.generator.inputs[0].shape[-1])
        rng = np.random.default_rng(ctx.seed)
        grid = rng.standard_normal((self.config.grid_samples, latent)).astype(np.float32)
        scored = rng.standard_normal((self._score_samples(ctx), latent)).astype(np.float32)
        return grid, scored

    def scorer(self, ctx: kplug.RunContext) -> Any:
        """The classifier that scores samples: loaded, or trained here on first use (and
        saved as scorer.keras in the run directory); None when scoring is off."""
        if self._scorer is not None or not self._score_samples(ctx):
            return self._scorer
        from kplug_gan.quality import load_scorer, train_scorer

        if self.config.scorer:
            self._scorer = load_scorer(self.config.scorer, self.image_shape)
            return self._scorer

        if self.num_classes is None or not isinstance(self.labelled.get("train"), tuple):
            raise kplug.DataError(
                "the adversarial objective scores samples with a classifier, and this data has "
                "no class labels in NumPy arrays to train one; give objective.scorer (a "
                "classifier run) or set objective.score_samples: 0."
            )
        from kplug import SMOKE_STEPS, save_model

        ctx.log.info("training the sample scorer (%d epochs)", self.config.scorer_epochs)
        self._scorer = train_scorer(
            self.labelled["train"],
            num_classes=self.num_classes,
            epochs=1 if ctx.smoke else self.config.scorer_epochs,
            batch_size=SCORER_BATCH,
            steps_per_epoch=SMOKE_STEPS if ctx.smoke else None,
        )
        if ctx.directory is not None and (ctx.strategy is None or ctx.strategy.is_chief):
            save_model(self._scorer, ctx.directory, SCORER_FILE)
        return self._scorer

    def report(self, model: Any, data: kplug.Data, ctx: kplug.RunContext) -> dict[str, Any]:
        """The final samples' score, and the same figures for real test images."""
        from kplug_gan.quality import score, to_unit

        scorer = self.scorer(ctx)
        if scorer is None:
            return {}
        _, scored = self.noise(ctx)
        samples = score(scorer, to_unit(model.generator.predict(scored, verbose=0)))
        out: dict[str, Any] = {"samples": {"count": len(scored), **samples}}
        test = self.labelled.get("test")
        if isinstance(test, tuple) and len(test[0]):
            x, y = test
            real = score(scorer, x)
            predicted = scorer.predict(x, batch_size=256, verbose=0).argmax(axis=-1)
            accuracy = float((predicted == np.asarray(y)).mean())
            out["real_test_images"] = {"count": len(x), "scorer_accuracy": accuracy, **real}
        out["scorer"] = self.config.scorer or SCORER_FILE
        ctx.log.info("generated samples: confidence %.3f, class entropy %.3f nats",
                     samples["confidence"], samples["class_entropy"])  # fmt: skip
        return {"gan": out}

    def _score_samples(self, ctx: kplug.RunContext) -> int:
        return min(self.config.score_samples, 128) if ctx.smoke else self.config.score_samples


def _white_level(split: Any) -> float:
    """255 for 0..255 pixels, 1 for 0..1 ones."""
    if isinstance(split, tuple):
        x = np.asarray(split[0])
        return 255.0 if x.dtype == np.uint8 or float(x.max(initial=0)) > 1.0 else 1.0
    import tensorflow as tf

    spec = split.element_spec[0] if isinstance(split.element_spec, tuple) else split.element_spec
    return 255.0 if spec.dtype == tf.uint8 else 1.0


def _scaled(split: Any, factor: float, offset: float, *, labels: bool) -> Any:
    """`x * factor + offset` as float32 images with a channel axis, labels kept or not."""
    if split is None:
        return None
    if isinstance(split, tuple):
        x = np.asarray(split[0], dtype=np.float32) * factor + offset
        x = x[..., None] if x.ndim == 3 else x
        return (x, np.asarray(split[1])) if labels else (x,)
    import tensorflow as tf

    def scale(x, *rest):
        x = tf.cast(x, tf.float32) * factor + offset
        x = x[..., None] if x.shape.rank == 2 else x
        return (x, rest[0]) if labels and rest else (x,)

    return split.map(scale)
