"""The core recipe sections: options every run has, whatever its components."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from kplug.config import Config

RUN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"

# Keras optimizer identifiers (keras.optimizers.get); checked here so that validation
# never imports Keras.
OPTIMIZERS = (
    "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "ftrl",
    "lamb", "lion", "muon", "nadam", "rmsprop", "sgd",
)  # fmt: skip


class DataOptions(Config):
    """Options of the `data:` section that every dataset has."""

    batch_size: PositiveInt = Field(32, description="global batch size (all replicas)")
    validation_split: Annotated[float, Field(ge=0.0, lt=1.0)] | None = Field(
        None, description="fraction of train held out for validation; null: the dataset's own"
    )
    limit: PositiveInt | None = Field(
        None, description="use at most this many examples per split (quick runs, tests)"
    )
    shuffle: bool = Field(True, description="reshuffle the training data every epoch")


class ModelOptions(Config):
    """Options of the `model:` section that every architecture has."""

    init_from: str | None = Field(
        None,
        description="start from the weights of a .keras file, a run directory, or runs/<name> "
        "(its newest completed run); layers are matched by name and shape",
    )
    init_strict: bool = Field(
        False, description="fail unless every layer with weights gets weights from init_from"
    )
    init_exclude: list[str] = Field(
        [],
        description="layer-name patterns (fnmatch, e.g. logits, dense*) that init_from does "
        "not load: they keep their fresh initialization (a new head for new classes)",
    )
    freeze: list[str] = Field(
        [],
        description="layers not trained: layer-name patterns (fnmatch, e.g. conv*, "
        "block[1-4]_*), or `base`, the part the architecture marks as its base (a pretrained "
        "backbone, the cnn's convolution blocks); frozen BatchNormalization runs in "
        "inference mode",
    )

    @field_validator("freeze", "init_exclude", mode="before")
    @classmethod
    def _one_pattern_is_a_list(cls, value):
        return [value] if isinstance(value, str) else value


class ScheduleOptions(Config):
    """A learning-rate schedule: a decay after an optional linear warmup."""

    name: Literal["constant", "cosine", "linear", "exponential"] = "constant"
    warmup_steps: NonNegativeInt = Field(0, description="linear warmup from 0")
    decay_steps: PositiveInt | None = Field(
        None, description="steps of decay after warmup; null: the rest of training"
    )
    final_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.0, description="learning rate at the end of decay, as a fraction of the peak"
    )
    decay_rate: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.96, description="exponential: factor per `decay_steps`"
    )


class OptimizerOptions(Config):
    """The `optimizer:` section."""

    name: Literal[OPTIMIZERS] = "adam"  # type: ignore[valid-type]
    learning_rate: PositiveFloat = 1e-3
    scale_learning_rate: Literal["none", "linear"] = Field(
        "none", description="linear: multiply learning_rate by the strategy's replicas (for a "
        "rate tuned on one replica's share of the global batch)"
    )  # fmt: skip
    weight_decay: NonNegativeFloat | None = Field(
        None, description="decoupled weight decay (adamw, sgd, ...); null: none"
    )
    exclude_from_weight_decay: list[str] = Field(
        default_factory=lambda: ["bias", "gamma", "beta", "embeddings"],
        description="variables whose name contains one of these get no weight decay",
    )
    schedule: ScheduleOptions = Field(default_factory=ScheduleOptions)
    clipnorm: PositiveFloat | None = None
    global_clipnorm: PositiveFloat | None = None
    clipvalue: PositiveFloat | None = None
    beta_1: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    beta_2: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    epsilon: PositiveFloat | None = None
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    nesterov: bool | None = None
    rho: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None


class EarlyStoppingOptions(Config):
    monitor: str = "val_loss"
    patience: NonNegativeInt = 3
    min_delta: NonNegativeFloat = 0.0
    restore_best_weights: bool = True


class PhaseOptions(Config):
    """One entry of `train.phases`: some epochs with their own frozen layers and rate."""

    epochs: PositiveInt = Field(description="epochs of this phase")
    learning_rate: PositiveFloat | None = Field(
        None, description="this phase's peak learning rate; null: optimizer.learning_rate"
    )
    freeze: list[str] | None = Field(
        None, description="layers frozen in this phase (patterns or `base`, as model.freeze); "
        "null: model.freeze; []: train everything"
    )  # fmt: skip
    unfreeze: list[str] = Field(
        [], description="layers trained in this phase although `freeze` covers them "
        "(e.g. block5_* of a frozen base)"
    )  # fmt: skip

    @field_validator("freeze", "unfreeze", mode="before")
    @classmethod
    def _one_pattern_is_a_list(cls, value):
        return [value] if isinstance(value, str) else value


class TrainOptions(Config):
    """The `train:` section."""

    epochs: NonNegativeInt = Field(
        10, description="0: no training (evaluate, compress, export); with phases: their sum"
    )
    phases: list[PhaseOptions] = Field(
        [],
        description="train in phases, each with its epochs, frozen layers and learning rate "
        "(a new optimizer per phase; epochs and metrics.csv continue)",
    )
    steps_per_epoch: PositiveInt | None = Field(None, description="null: the whole train split")
    validation_steps: PositiveInt | None = None
    mixed_precision: Literal[False, True, "mixed_float16", "mixed_bfloat16"] = Field(
        False, description="true means mixed_float16 (with loss scaling)"
    )
    gradient_accumulation_steps: PositiveInt = 1
    remat: Literal[False, True, "full", "activations", "larger_than", "list_of_layers"] = Field(
        False, description="gradient checkpointing (keras.RematScope mode); true means full"
    )
    jit_compile: Literal[True, False, "auto"] = "auto"
    early_stopping: EarlyStoppingOptions | None = None
    tensorboard: bool = False
    verbose: Literal["auto", 0, 1, 2] = "auto"
    checkpoint_every: PositiveInt | None = Field(
        None, description="also save a checkpoint every this many training steps (one is "
        "always saved at each epoch end); null: at epoch ends only"
    )  # fmt: skip
    keep_checkpoints: NonNegativeInt = Field(
        2, description="newest checkpoints kept in the run's checkpoints/ folder; 0: none "
        "(the run cannot be resumed)"
    )  # fmt: skip
    deterministic: bool = Field(
        False, description="TensorFlow op determinism (enable_op_determinism): reruns and "
        "resumed runs give the same weights; slower on GPUs"
    )  # fmt: skip

    @model_validator(mode="after")
    def _epochs_are_the_phases(self) -> TrainOptions:
        if not self.phases:
            return self
        total = sum(phase.epochs for phase in self.phases)
        if "epochs" in self.model_fields_set and self.epochs != total:
            raise ValueError(
                f"train.epochs is {self.epochs} but the phases add up to {total} epochs; "
                "remove train.epochs (with phases it is their sum) or change the phases' "
                "epochs (train.phases.0.epochs=...)"
            )
        object.__setattr__(self, "epochs", total)
        return self
