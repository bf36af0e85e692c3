"""`vgg16` and `keras_application`: a `keras.applications` backbone without its top, as a
nested model named `base`, under a configurable head.

Input adaptation: grayscale images become 3 channels, images smaller than the backbone's
minimum (32x32 for VGG16) are resized up (or to `input_size`), then the backbone's own
preprocessing (`BackbonePreprocess`). Head (the seed's, for vgg16): Flatten, Dense 256
relu, Dense classes, softmax. `model.freeze: base` freezes the backbone.

Weights: `imagenet` goes through Keras' own download and cache (`~/.keras/models/`, or
`$KERAS_HOME/models/`); `none` is a random start; anything else is the path of a weights
file (`.weights.h5` saved by `save_weights`, or Keras' own `..._notop.h5` file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator

import kplug
from kplug import BASE_LAYERS_KEY
from kplug_vision.augment import AugmentConfig, augment

# keras.applications models (Keras 3.15), listed here so that validation imports no Keras.
BACKBONES = (
    "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge",
    "DenseNet121", "DenseNet169", "DenseNet201",
    "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3", "EfficientNetB4",
    "EfficientNetB5", "EfficientNetB6", "EfficientNetB7",
    "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
    "EfficientNetV2L", "EfficientNetV2M", "EfficientNetV2S",
    "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Large",
    "MobileNetV3Small", "NASNetLarge", "NASNetMobile",
    "ResNet101", "ResNet101V2", "ResNet152", "ResNet152V2", "ResNet50", "ResNet50V2",
    "VGG16", "VGG19", "Xception",
)  # fmt: skip
# The smallest input each backbone takes without its top (32 for the others).
MIN_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}


class ApplicationHeadConfig(kplug.Config):
    """Options shared by `vgg16` and `keras_application`."""

    weights: str | None = Field(
        "imagenet",
        description="imagenet (Keras download and cache), none (random start), or the path "
        "of a weights file",
    )
    input_size: PositiveInt | None = Field(
        None, description="resize images to this square size; null: keep them, resized up to "
        "the backbone's minimum (32 for VGG16)"
    )  # fmt: skip
    input_scale: float = Field(
        1.0, gt=0.0, description="the value of a white pixel in the data (1.0 for normalized "
        "images, 255.0 for raw pixels)"
    )  # fmt: skip
    pooling: Literal["flatten", "avg", "max"] = Field(
        "flatten", description="how the backbone's feature map enters the head"
    )
    dense_units: list[PositiveInt] | PositiveInt = Field(
        [256], description="hidden Dense layers of the head (relu)"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the output layer")
    output_activation: Literal["softmax", "linear"] = "softmax"
    augment: AugmentConfig | None = Field(
        None, description="random flips/rotations/zooms/translations, in training only"
    )

    @field_validator("weights", mode="before")
    @classmethod
    def _none_means_random(cls, value: Any) -> Any:
        return None if value is None or str(value).lower() in ("none", "null", "") else value


class VGG16Config(ApplicationHeadConfig):
    """`vgg16`: the seed's transfer model."""


class KerasApplicationConfig(ApplicationHeadConfig):
    backbone: Literal[BACKBONES] = Field(  # type: ignore[valid-type]
        "ResNet50", description="a keras.applications model name"
    )
    pooling: Literal["flatten", "avg", "max"] = "avg"


def build_vgg16(config: VGG16Config, ctx: kplug.RunContext):
    return build_application("VGG16", config, ctx, name="vgg16")


def build_keras_application(config: KerasApplicationConfig, ctx: kplug.RunContext):
    return build_application(config.backbone, config, ctx, name=config.backbone.lower())


def build_application(backbone: str, config: ApplicationHeadConfig, ctx: kplug.RunContext,
                      *, name: str):  # fmt: skip
    import keras
    from keras import layers

    from kplug_vision.backbone_preprocess import BackbonePreprocess

    spec = ctx.spec
    height, width, channels = _image_shape(spec.input_shape, name)
    if spec.num_classes is None:
        raise kplug.DataError(f"{name} needs a classification dataset (no num_classes)")
    size = config.input_size or max(height, width, MIN_SIZE.get(backbone, 32))

    # === Input adaptation ===
    inputs = keras.Input(shape=tuple(spec.input_shape), name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((height, width, 1))(inputs)
    x = augment(x, config.augment)
    if channels == 1:
        x = layers.Concatenate(axis=-1, name="to_rgb")([x, x, x])
    if (height, width) != (size, size):
        x = layers.Resizing(size, size, name="resize")(x)
    x = BackbonePreprocess(backbone, input_scale=config.input_scale, name="preprocess")(x)

    # === Backbone ===
    base = backbone_model(backbone, config.weights, (size, size, 3))
    x = base(x)

    # === Head ===
    if config.pooling == "flatten":
        x = layers.Flatten(name="flatten")(x)
    else:
        pool = layers.GlobalAveragePooling2D if config.pooling == "avg" else (
            layers.GlobalMaxPooling2D)  # fmt: skip
        x = pool(name="pool")(x)
    units = config.dense_units
    for index, width_ in enumerate([units] if isinstance(units, int) else units, start=1):
        x = layers.Dense(width_, activation="relu", name=f"dense{index}")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    x = layers.Dense(spec.num_classes, name="logits")(x)
    outputs = layers.Activation(config.output_activation, dtype="float32", name="probabilities")(x)
    ctx.state[BASE_LAYERS_KEY] = ["base"]
    return keras.Model(inputs, outputs, name=name)


def backbone_model(backbone: str, weights: str | None, input_shape: tuple[int, int, int]):
    """The `keras.applications` model without its top, named `base`, with its weights.

    Raises:
        kplug.KplugError: ImageNet weights neither downloadable nor cached, a missing or
            unreadable weights file, an input size the backbone refuses.
    """
    import keras

    application = getattr(keras.applications, backbone)
    if weights not in (None, "imagenet"):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise kplug.KplugError(
                f"model.weights: {path} is not a file; give the path of a {backbone} weights "
                "file (.weights.h5 from save_weights, or Keras' ..._notop.h5), imagenet or none."
            )
        weights = str(path)
    try:
        return application(include_top=False, weights=weights, input_shape=input_shape,
                           name="base")  # fmt: skip
    except Exception as error:
        raise _weights_error(backbone, weights, input_shape, error) from None


def _weights_error(backbone: str, weights: str | None, shape: tuple, error: Exception):
    detail = " ".join(str(error).split())[:300]
    if weights == "imagenet":
        cache = keras_cache_dir()
        return kplug.KplugError(
            f"model.weights: imagenet: the {backbone} ImageNet weights are not in the Keras "
            f"cache ({cache}) and could not be downloaded ({type(error).__name__}: {detail}). "
            "Run once with network access (Keras keeps the file there), copy the file into "
            f"{cache}, or give a local file: model.weights=/path/to/{backbone.lower()}"
            "_notop.h5 (or weights: none for a random start)."
        )
    if weights is not None:
        return kplug.KplugError(
            f"model.weights: cannot load {weights} into {backbone} without its top "
            f"({type(error).__name__}: {detail}). Give a weights file of the same backbone: "
            "model.save_weights('x.weights.h5') of keras.applications."
            f"{backbone}(include_top=False), or Keras' ..._notop.h5."
        )
    return kplug.KplugError(
        f"{backbone} cannot be built for input shape {shape}: {detail}. Set model.input_size "
        f"to a size it takes (at least {MIN_SIZE.get(backbone, 32)})."
    )


VGG16_BASE_PARAMETERS = 14_714_688  # keras.applications.VGG16(include_top=False)


def estimate_vgg16(config: VGG16Config, facts: dict) -> dict:
    """The exact parameter count from the input shape, without building (`kplug plan`)."""
    shape, classes = facts.get("input_shape"), facts.get("num_classes")
    if not shape or not classes or len(shape) not in (2, 3):
        return {}
    size = config.input_size or max(shape[0], shape[1], 32)
    side = size
    for _ in range(5):  # five 2x2 max-poolings
        side //= 2
    features = side * side * 512 if config.pooling == "flatten" else 512
    params = VGG16_BASE_PARAMETERS
    units = config.dense_units
    for width in [units] if isinstance(units, int) else units:
        params += features * width + width
        features = width
    return {"parameters": params + features * classes + classes}


def keras_cache_dir() -> str:
    """Where Keras caches application weights: `$KERAS_HOME/models` or `~/.keras/models`."""
    try:
        from keras.src.backend.config import keras_home

        home = keras_home()
    except ImportError:
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(os.path.expanduser(home), "models")


def _image_shape(shape, name: str) -> tuple[int, int, int]:
    if shape is None or len(shape) not in (2, 3) or None in tuple(shape):
        raise kplug.DataError(
            f"{name} needs images of a fixed shape (height, width[, channels]); the data has "
            f"{shape}"
        )
    height, width, *rest = shape
    channels = rest[0] if rest else 1
    if channels not in (1, 3):
        raise kplug.DataError(f"{name} takes 1 (grayscale) or 3 (RGB) channels, not {channels}")
    return int(height), int(width), int(channels)
