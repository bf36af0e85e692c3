"""A `keras.applications` backbone's own input preprocessing as a layer: `standard_preprocess`
(a frozen 1x1 Conv2D, what new models use: plain Keras loads it) and `BackbonePreprocess`
(kept so that models saved with it still load). Either way the saved `.keras` model holds
the preprocessing (and loads with `safe_mode=True`)."""

from __future__ import annotations

import importlib

import keras


@keras.saving.register_keras_serializable(package="kplug_vision")
class BackbonePreprocess(keras.layers.Layer):
    """Scales images to 0..255 and applies `keras.applications.<module>.preprocess_input`
    of a backbone (VGG16: RGB to BGR and ImageNet mean subtraction; MobileNetV2: to -1..1;
    EfficientNet: nothing, its model rescales itself).

    Args:
        backbone: a `keras.applications` model name (`VGG16`, `ResNet50`, ...).
        input_scale: the value of a white pixel in the inputs (1.0 for images scaled to
            0..1, 255.0 for raw pixels).

    Example:
    ```python
    x = BackbonePreprocess("VGG16", input_scale=1.0)(images_in_0_1)
    ```
    """

    def __init__(self, backbone: str, input_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.input_scale = input_scale
        self._preprocess = preprocess_function(backbone)

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype) * (255.0 / self.input_scale)
        return self._preprocess(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"backbone": self.backbone, "input_scale": self.input_scale})
        return config


def preprocess_function(backbone: str):
    """`keras.applications.<module>.preprocess_input` of the module defining `backbone`."""
    module = getattr(keras.applications, backbone).__module__.rsplit(".", 1)[-1]
    return importlib.import_module(f"keras.applications.{module}").preprocess_input


def standard_preprocess(backbone: str, input_scale: float = 1.0, name: str = "preprocess"):
    """The backbone's `preprocess_input` as a frozen 1x1 `Conv2D` (a standard Keras layer, so
    a saved model loads in plain Keras without kplug): every `keras.applications` preprocessing
    maps each pixel's channels affinely (VGG16: RGB to BGR and minus the ImageNet mean;
    MobileNetV2: to -1..1; EfficientNet: identity), which a 1x1 convolution holds exactly.
    Read off the function itself on probe pixels, and checked on random ones."""
    import numpy as np

    preprocess = preprocess_function(backbone)
    probes = np.concatenate([np.zeros((1, 1, 1, 3)), 255.0 * np.eye(3).reshape(3, 1, 1, 3)])
    out = np.asarray(preprocess(probes.astype("float32").copy()), "float64").reshape(4, 3)
    offset, columns = out[0], out[1:] - out[0]  # columns[i]: output per unit of input channel i
    kernel = (columns * (255.0 / input_scale) / 255.0).reshape(1, 1, 3, 3)
    check = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 3)).astype("float32")
    expected = np.asarray(preprocess(check.copy()), "float64")
    if not np.allclose(check @ (columns / 255.0) + offset, expected, atol=1e-3):
        raise ValueError(f"{backbone}'s preprocess_input is not a per-pixel affine map")
    layer = keras.layers.Conv2D(3, 1, name=name, trainable=False)
    layer.build((None, None, None, 3))
    layer.set_weights([kernel.astype("float32"), offset.astype("float32")])
    return layer
